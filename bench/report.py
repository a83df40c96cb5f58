"""The result: one row per scenario, target and concurrency (medians over the repeats, errors
summed), printed as one table and written as JSON under ``bench/results/``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    scenario: str  # "fixed", "delay50", "stream-ttft", "scaling", "soak"
    target: str  # "direct", "django-bare", "gateway", a gateway profile, "workers-N"
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0  # errors: sheds are not among them
    socket_errors: int = 0
    shed: int = 0  # 503 answers of a gateway shedding load (explicit, not errors)
    added_p50_ms: float | None = None
    ratio: float | None = None  # req/s over the direct upstream's req/s
    vs_bare: float | None = None  # a gateway's req/s over the bare Django view's
    cpu_ms_per_request: float | None = None
    rss_mb: float | None = None  # peak resident set of the server process (largest worker) so far (VmHWM)
    note: str = ""
    runs: list[dict[str, object]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.scenario} {self.target}"

    @property
    def failed(self) -> bool:
        return bool(self.non_2xx or self.socket_errors)


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def compare(level: list[Row]) -> None:
    """Fill in, for the rows of one scenario and concurrency, what each server adds over the
    direct upstream, and each gateway's throughput relative to the bare Django view."""
    by_target = {row.target: row for row in level}
    direct = by_target.get("direct")
    bare = by_target.get("django-bare")
    for row in level:
        if direct is not None and row is not direct:
            row.added_p50_ms = row.p50_ms - direct.p50_ms
            row.ratio = _ratio(row.requests_per_s, direct.requests_per_s)
        if bare is not None and row.target.startswith("gateway"):
            row.vs_bare = _ratio(row.requests_per_s, bare.requests_per_s)


COLUMNS = (
    ("scenario", 23, "<"),
    ("c", 4, ">"),
    ("req/s", 9, ">"),
    ("p50 ms", 8, ">"),
    ("p99 ms", 8, ">"),
    ("+p50 ms", 8, ">"),
    ("x direct", 8, ">"),
    ("gw/bare", 8, ">"),
    ("CPU ms/req", 10, ">"),
    ("RSS MB", 7, ">"),
    ("non-2xx", 8, ">"),
    ("sock err", 8, ">"),
    ("shed", 7, ">"),
)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cells(row: Row) -> list[str]:
    return [
        row.label,
        str(row.concurrency),
        _number(row.requests_per_s, 0 if row.requests_per_s >= 100 else 1),
        _number(row.p50_ms, 2),
        _number(row.p99_ms, 2),
        _number(row.added_p50_ms, 2),
        "-" if row.ratio is None else f"{row.ratio:.3f}",
        "-" if row.vs_bare is None else f"{row.vs_bare:.3f}",
        _number(row.cpu_ms_per_request, 3),
        _number(row.rss_mb, 1),
        f"{row.non_2xx}{' !' if row.non_2xx else ''}",
        f"{row.socket_errors}{' !' if row.socket_errors else ''}",
        str(row.shed),
    ]


def render_table(rows: list[Row]) -> str:
    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)
        ).rstrip()

    header = line([name for name, _, _ in COLUMNS])
    out = [header, "-" * len(header)]
    previous = None
    for row in rows:
        if previous is not None and row.scenario != previous:
            out.append("")
        previous = row.scenario
        out.append(line(_cells(row)))
    notes = [f"  {row.label} c={row.concurrency}: {row.note}" for row in rows if row.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def error_summary(rows: list[Row]) -> str:
    failed = [row for row in rows if row.failed]
    if not failed:
        return "errors: none (no non-2xx responses but explicit sheds, no socket errors)"
    lines = [f"ERRORS in {len(failed)} row(s), marked ! above:"]
    lines += [
        f"  {row.label} c={row.concurrency}: {row.non_2xx} non-2xx, {row.socket_errors} socket errors"
        for row in failed
    ]
    return "\n".join(lines)


def write_json(
    rows: list[Row], meta: dict[str, object], *, directory: Path, mode: str, extra: dict[str, object]
) -> Path:
    """``{"meta", "rows", **extra}`` (extra: the usage-record checks, the scaling and soak
    summaries) to ``<directory>/<UTC timestamp>-<mode>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}-{mode}.json"
    document = {"meta": meta, "rows": [asdict(row) for row in rows], **extra}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
    return path
