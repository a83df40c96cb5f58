"""Server-side charts for the admin usage pages: inline SVG bar charts (no script, no network),
labels escaped."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 720, 200, 28


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: Decimal
    second: Decimal = Decimal(0)  # drawn over the bar in the accent colour (e.g. errors)


def bar_chart(bars: list[Bar], *, title: str, unit: str = "") -> SafeString:
    """One bar per item, scaled to the largest; each bar has a <title> with its exact value."""
    top = max((b.value for b in bars), default=Decimal(0)) or Decimal(1)
    step = (WIDTH - 2 * PAD) / max(len(bars), 1)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
    ]
    usable = HEIGHT - 2 * PAD - 10
    for index, bar in enumerate(bars):
        x = PAD + index * step + step * 0.1
        height = float(bar.value / top) * usable
        second = float(bar.second / top) * usable
        y = HEIGHT - PAD - height
        label = f"{bar.label}: {bar.value}{unit}" + (f" ({bar.second} errors)" if bar.second else "")
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" height="{height:.1f}"'
            f' fill="#417690"><title>{escape(label)}</title></rect>'
        )
        if second:
            parts.append(
                f'<rect class="bar-second" x="{x:.1f}" y="{HEIGHT - PAD - second:.1f}"'
                f' width="{step * 0.8:.1f}" height="{second:.1f}" fill="#ba2121"/>'
            )
        if len(bars) <= 16 or index % max(1, len(bars) // 8) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" font-size="10">{escape(bar.label[-10:])}</text>'
            )
    parts.append(
        f'<text x="{WIDTH - PAD}" y="16" font-size="11" text-anchor="end">max {escape(str(top))}{unit}</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
