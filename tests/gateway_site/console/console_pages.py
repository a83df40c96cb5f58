"""Helpers for the console page tests: the chart specifications a page embeds."""

from __future__ import annotations

import json
import re


def chart_specs(html: str) -> dict[str, dict]:
    """Every chart of a page by id (the JSON each ``figure.console-chart`` is drawn from)."""
    found = re.findall(r'<script id="(chart-[a-z-]+)" type="application/json">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in found}


def series(spec: dict, label: str) -> list[tuple[str, float, str]]:
    (dataset,) = [d for d in spec["datasets"] if d["label"] == label]
    return [(p["x"], p["y"], p["text"]) for p in dataset["points"]]
