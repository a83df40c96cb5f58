"""``soak``: the target "at most 150 MB RSS per worker under load, flat over a 10-minute soak"
(docs/benchmarks.md). A fresh full-path gateway (``bench.profiles.FULL``, one Daphne process pinned like the
ladder's) under wrk at c=16 on the fixed upstream for ``--soak-seconds`` (default 600), in
slices of 60 s; after each slice the process's resident set (VmRSS) is read.

Flat means: the growth after the first two slices (the least-squares slope of VmRSS over the
samples taken from the end of the second slice on, in MB per minute) is under 1 MB/min. Not
flat, or a sample above 150 MB, is a failure of the run."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial

from bench.gateway import MODELS
from bench.payloads import chat_request
from bench.proc import memory
from bench.profiles import FULL
from bench.report import Row
from bench.scenarios import Bench, Target, gateway_target, measure, show_wrk
from bench.wrk import WrkResult, lua_script, run_wrk

CONCURRENCY = 16
SLICE_SECONDS = 60
FLAT_MB_PER_MINUTE = 1.0
RSS_TARGET_MB = 150.0
TARGET_NAME = "gateway-full"


@dataclass(frozen=True)
class Slice:
    index: int
    end_s: float  # wall-clock seconds since the first slice started (after the warm-up)
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_ms_per_request: float
    rss_mb: float  # VmRSS right after the slice


def growth_mb_per_minute(slices: list[Slice]) -> float | None:
    """Least-squares slope of VmRSS over the samples from the end of the second slice on."""
    points = [(s.end_s / 60, s.rss_mb) for s in slices[1:]]
    if len(points) < 2:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_m = statistics.fmean(m for _, m in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / spread if spread else None


@dataclass(frozen=True)
class SoakSummary:
    seconds: int
    concurrency: int
    slices: list[Slice]
    peak_rss_mb: float  # VmHWM at the end

    @property
    def growth(self) -> float | None:
        return growth_mb_per_minute(self.slices)

    @property
    def flat(self) -> bool:
        return self.growth is not None and self.growth < FLAT_MB_PER_MINUTE

    @property
    def max_rss_mb(self) -> float:
        return max(s.rss_mb for s in self.slices)

    @property
    def failed(self) -> bool:
        return not self.flat or self.max_rss_mb > RSS_TARGET_MB

    def describe(self) -> str:
        first, last = self.slices[0].rss_mb, self.slices[-1].rss_mb
        growth = "n/a (fewer than 3 slices)" if self.growth is None else f"{self.growth:+.2f} MB/min"
        flat = "flat" if self.flat else "NOT FLAT !"
        memory = "within" if self.max_rss_mb <= RSS_TARGET_MB else "ABOVE !"
        return (
            f"soak: {self.seconds} s at c={self.concurrency}, {len(self.slices)} slices: VmRSS first slice "
            f"{first:.1f} MB, last {last:.1f} MB, max {self.max_rss_mb:.1f} MB (peak VmHWM "
            f"{self.peak_rss_mb:.1f} MB, {memory} the {RSS_TARGET_MB:.0f} MB target); growth after the "
            f"first two slices {growth}: {flat} (flat means under {FLAT_MB_PER_MINUTE:.0f} MB/min)"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "concurrency": self.concurrency,
            "slice_seconds": SLICE_SECONDS,
            "first_rss_mb": self.slices[0].rss_mb,
            "last_rss_mb": self.slices[-1].rss_mb,
            "max_rss_mb": self.max_rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "growth_mb_per_minute": self.growth,
            "flat": self.flat,
            "flat_threshold_mb_per_minute": FLAT_MB_PER_MINUTE,
            "rss_target_mb": RSS_TARGET_MB,
            "failed": self.failed,
            "slices": [asdict(s) for s in self.slices],
        }


def _row(summary: SoakSummary, results: list[WrkResult]) -> Row:
    requests = sum(s.requests for s in summary.slices)
    duration = sum(r.duration_s for r in results)
    cpu_ms = sum(s.cpu_ms_per_request * s.requests for s in summary.slices)
    return Row(
        scenario="soak",
        target=TARGET_NAME,
        concurrency=summary.concurrency,
        requests_per_s=requests / duration if duration else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        cpu_ms_per_request=cpu_ms / requests if requests else None,
        rss_mb=summary.peak_rss_mb,
        note=f"{len(results)} slices; p50 and p99 are the slices' medians; RSS is the peak (VmHWM)",
        runs=[r.as_dict() for r in results],
    )


def soak_scenario(bench: Bench, *, seconds: int) -> tuple[list[Row], SoakSummary]:
    fleet = bench.fleet
    gateway = fleet.gateway(FULL, name="soak-gateway-full")
    target: Target = gateway_target(TARGET_NAME, gateway, MODELS["fixed"])
    bench.check_target(target)
    script = bench.workdir / "soak.lua"
    script.write_text(lua_script(body=chat_request(target.model), key=target.key))

    def run(length: int) -> WrkResult:
        result = run_wrk(
            target.url, script=script, connections=CONCURRENCY, seconds=length, cpu=bench.pinning.load_cpu
        )
        target.completed(result.requests, in_flight=CONCURRENCY)
        return result

    if bench.options.warmup:
        run(bench.options.warmup)
    count = math.ceil(seconds / SLICE_SECONDS)
    slices: list[Slice] = []
    results: list[WrkResult] = []
    started = time.monotonic()
    for index in range(count):
        length = min(SLICE_SECONDS, seconds - index * SLICE_SECONDS)
        m = measure(target, partial(run, length), lambda r: r.requests)
        assert m.cost is not None  # a gateway target always has a process to read
        results.append(m.result)
        slices.append(
            Slice(
                index=index + 1,
                end_s=round(time.monotonic() - started, 2),
                requests=m.result.requests,
                requests_per_s=m.result.requests_per_s,
                p50_ms=m.result.p50_ms,
                p99_ms=m.result.p99_ms,
                non_2xx=m.result.non_2xx,
                socket_errors=m.result.socket_errors,
                cpu_ms_per_request=m.cost.cpu_ms_per_request,
                rss_mb=m.cost.rss_mb,
            )
        )
        print(
            f"  soak        {TARGET_NAME:<14} c={CONCURRENCY:<4} slice {index + 1}/{count} ({length} s): "
            f"{show_wrk(m.result)}, {m.cost.describe()}",
            flush=True,
        )
    peak = memory(gateway.service.pid).peak_rss_mb
    summary = SoakSummary(seconds=seconds, concurrency=CONCURRENCY, slices=slices, peak_rss_mb=peak)
    fleet.retire(gateway)
    return [_row(summary, results)], summary
