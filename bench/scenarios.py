"""The scenarios. Each runs its targets at the same concurrency levels, alternately (direct,
bare Django, gateway, direct, ...) so that all of them see the same machine:

- ``fixed``: the nearly free fixed-response upstream (what a server in front of it costs);
- ``delay50``: the 50 ms upstream, up to c=256 (no collapse with concurrency);
- ``stream-ttft``: streaming through the gateway versus direct: time to first content chunk, and
  whether chunks are relayed as they arrive (the asyncio client in ``bench.ttft``).

Targets: ``direct`` (the upstream itself), ``django-bare`` (``bench.baseline_app``, the
reference of BENCHMARK.md's throughput target) and ``gateway``. The CPU and memory of the last
two are read from /proc around each measured run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

import httpx

from bench.gateway import MODELS, DaphneServer, Gateway
from bench.options import Options
from bench.payloads import chat_request
from bench.proc import Pinning, Service, cpu_snapshot, cpu_spent, memory
from bench.report import Row, compare
from bench.ttft import StreamRun, run_streams
from bench.upstreams import Upstream, Upstreams
from bench.wrk import WrkResult, lua_script, run_wrk

Result = TypeVar("Result", WrkResult, StreamRun)

DIRECT, BARE, GATEWAY = "direct", "django-bare", "gateway"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    model: str
    key: str | None
    service: Service | None  # the process charged with CPU and memory; None for direct


@dataclass(frozen=True)
class Cost:
    """A server's CPU per request over one measured run, split by thread kind, and its memory."""

    cpu_ms_per_request: float
    main_thread_ms_per_request: float
    background_threads_ms_per_request: float
    short_lived_threads_ms_per_request: float
    rss_mb: float
    peak_rss_mb: float

    def describe(self) -> str:
        return (
            f"CPU {self.cpu_ms_per_request:.3f} ms/req (loop thread {self.main_thread_ms_per_request:.3f}, "
            f"background {self.background_threads_ms_per_request:.3f}, "
            f"short-lived threads {self.short_lived_threads_ms_per_request:.3f}), "
            f"RSS {self.rss_mb:.0f} MB"
        )


@dataclass
class Measurement(Generic[Result]):
    result: Result
    cost: Cost | None


def measure(
    target: Target, action: Callable[[], Result], count: Callable[[Result], int]
) -> Measurement[Result]:
    """Run ``action`` and charge the target process's CPU time over that span to the requests
    it made (``count``)."""
    if target.service is None:
        return Measurement(action(), None)
    pid = target.service.pid
    before = cpu_snapshot(pid)
    result = action()
    after = cpu_snapshot(pid)
    if not target.service.alive():
        raise RuntimeError(f"{target.name} died during the run:\n{target.service.log_tail()}")
    spent = cpu_spent(pid, before, after)
    mem = memory(pid)
    per_request = 1000 / max(1, count(result))
    return Measurement(
        result,
        Cost(
            cpu_ms_per_request=spent.total * per_request,
            main_thread_ms_per_request=spent.main * per_request,
            background_threads_ms_per_request=spent.background * per_request,
            short_lived_threads_ms_per_request=spent.short_lived * per_request,
            rss_mb=mem.rss_mb,
            peak_rss_mb=mem.peak_rss_mb,
        ),
    )


class Bench:
    def __init__(
        self,
        *,
        options: Options,
        pinning: Pinning,
        gateway: Gateway,
        upstreams: Upstreams,
        baselines: dict[str, DaphneServer],
        workdir: Path,
    ) -> None:
        self.options = options
        self.pinning = pinning
        self.gateway = gateway
        self.upstreams = upstreams
        self.baselines = baselines
        self.workdir = workdir

    def targets(self, upstream: Upstream, *, with_baseline: bool = True) -> list[Target]:
        targets = [Target(DIRECT, upstream.chat_url, f"upstream-{upstream.name}", None, None)]
        baseline = self.baselines.get(upstream.name) if with_baseline else None
        if baseline is not None:
            targets.append(
                Target(BARE, baseline.chat_url, f"upstream-{upstream.name}", None, baseline.service)
            )
        targets.append(
            Target(
                GATEWAY, self.gateway.chat_url, MODELS[upstream.name], self.gateway.key, self.gateway.service
            )
        )
        return targets

    # --- checks before the load ---------------------------------------------------------------

    def check(self) -> None:
        """One request per model through the gateway (and each baseline); fail loudly before
        any load if an answer is wrong."""
        for upstream in (self.upstreams.fixed, self.upstreams.delay):
            for target in self.targets(upstream)[1:]:
                headers = {"Content-Type": "application/json"}
                if target.key:
                    headers["Authorization"] = f"Bearer {target.key}"
                response = httpx.post(
                    target.url, content=chat_request(target.model), headers=headers, timeout=10
                )
                if response.status_code != 200 or "choices" not in response.json():
                    log = target.service.log_tail() if target.service else ""
                    raise RuntimeError(
                        f"{target.name} check failed for {target.model}: HTTP {response.status_code} "
                        f"{response.text[:300]}\n{log}"
                    )
                overhead = response.headers.get("x-gateway-overhead-ms")
                print(
                    f"  check {target.name} {target.model}: HTTP 200"
                    + (f", x-gateway-overhead-ms {overhead}" if overhead else "")
                )
        run = run_streams(
            self.gateway.chat_url,
            body=chat_request(MODELS["stream"], stream=True),
            key=self.gateway.key,
            concurrency=1,
            seconds=0.01,
        )
        if run.errors or not run.samples:
            raise RuntimeError(f"gateway streaming check failed: {run.error_examples}")
        print(f"  check gateway {MODELS['stream']}: streamed, TTFT {run.samples[0].ttft_s * 1000:.1f} ms")

    # --- the common loop ------------------------------------------------------------------------

    def _level(
        self,
        targets: list[Target],
        concurrency: int,
        run: Callable[[Target, int, int], Result],
        count: Callable[[Result], int],
        show: Callable[[Result], str],
        scenario: str,
    ) -> dict[str, list[Measurement[Result]]]:
        """Warm every target up, then measure them in turn, ``repeats`` times."""
        opts = self.options
        if opts.warmup:
            for target in targets:
                run(target, concurrency, opts.warmup)
        measured: dict[str, list[Measurement[Result]]] = {t.name: [] for t in targets}
        for repeat in range(opts.repeats):
            for target in targets:
                m = measure(target, partial(run, target, concurrency, opts.duration), count)
                measured[target.name].append(m)
                cost = f", {m.cost.describe()}" if m.cost else ""
                print(
                    f"  {scenario:<11} {target.name:<11} c={concurrency:<4} run {repeat + 1}/{opts.repeats}: "
                    f"{show(m.result)}{cost}",
                    flush=True,
                )
        return measured

    # --- wrk scenarios ------------------------------------------------------------------------

    def wrk_scenario(self, scenario: str, upstream: Upstream, levels: tuple[int, ...]) -> list[Row]:
        targets = self.targets(upstream)
        scripts: dict[str, Path] = {}
        for target in targets:
            path = self.workdir / f"{scenario}-{target.name}.lua"
            path.write_text(lua_script(body=chat_request(target.model), key=target.key))
            scripts[target.name] = path

        def run(target: Target, concurrency: int, seconds: int) -> WrkResult:
            return run_wrk(
                target.url,
                script=scripts[target.name],
                connections=concurrency,
                seconds=seconds,
                cpu=self.pinning.load_cpu,
            )

        rows: list[Row] = []
        for concurrency in levels:
            measured = self._level(targets, concurrency, run, lambda r: r.requests, _show_wrk, scenario)
            level = [_wrk_row(scenario, name, concurrency, ms) for name, ms in measured.items()]
            compare(level)
            rows += level
        return rows

    # --- streaming ----------------------------------------------------------------------------

    def stream_scenario(self, levels: tuple[int, ...]) -> list[Row]:
        targets = self.targets(self.upstreams.stream, with_baseline=False)

        def run(target: Target, concurrency: int, seconds: int) -> StreamRun:
            return run_streams(
                target.url,
                body=chat_request(target.model, stream=True),
                key=target.key,
                concurrency=concurrency,
                seconds=seconds,
            )

        rows: list[Row] = []
        for concurrency in levels:
            measured = self._level(
                targets, concurrency, run, lambda r: len(r.samples) + r.errors, _show_stream, "stream-ttft"
            )
            level = [_stream_row(name, concurrency, ms) for name, ms in measured.items()]
            compare(level)
            rows += level
        return rows

    def run(self) -> list[Row]:
        rows: list[Row] = []
        if "fixed" in self.options.scenarios:
            rows += self.wrk_scenario("fixed", self.upstreams.fixed, self.options.concurrency)
        if "delay" in self.options.scenarios:
            rows += self.wrk_scenario("delay50", self.upstreams.delay, self.options.delay_concurrency)
        if "stream" in self.options.scenarios:
            rows += self.stream_scenario(self.options.stream_concurrency)
        return rows


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _apply_costs(row: Row, measurements: list[Measurement[Result]]) -> None:
    costs = [m.cost for m in measurements if m.cost is not None]
    if costs:
        row.cpu_ms_per_request = _median([c.cpu_ms_per_request for c in costs])
        row.rss_mb = max(c.peak_rss_mb for c in costs)
        for run, cost in zip(row.runs, costs, strict=True):
            run["cost"] = {
                "cpu_ms_per_request": cost.cpu_ms_per_request,
                "main_thread_ms_per_request": cost.main_thread_ms_per_request,
                "background_threads_ms_per_request": cost.background_threads_ms_per_request,
                "short_lived_threads_ms_per_request": cost.short_lived_threads_ms_per_request,
                "rss_mb": cost.rss_mb,
                "peak_rss_mb": cost.peak_rss_mb,
            }


def _wrk_row(scenario: str, target: str, concurrency: int, measured: list[Measurement[WrkResult]]) -> Row:
    runs = [m.result for m in measured]
    row = Row(
        scenario=scenario,
        target=target,
        concurrency=concurrency,
        requests_per_s=_median([r.requests_per_s for r in runs]),
        p50_ms=_median([r.p50_ms for r in runs]),
        p99_ms=_median([r.p99_ms for r in runs]),
        non_2xx=sum(r.non_2xx for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
        runs=[r.as_dict() for r in runs],
    )
    _apply_costs(row, measured)
    return row


def _stream_row(target: str, concurrency: int, measured: list[Measurement[StreamRun]]) -> Row:
    runs = [m.result for m in measured]
    incremental = min(run.incremental_share for run in runs)
    spread = _median([run.median_spread_ms for run in runs])
    examples = sorted({e for run in runs for e in run.error_examples})
    note = f"chunks relayed as they arrive in {incremental:.0%} of streams (median spread {spread:.0f} ms)"
    if examples:
        note += f"; errors e.g. {examples[0]}"
    row = Row(
        scenario="stream-ttft",
        target=target,
        concurrency=concurrency,
        requests_per_s=_median([run.streams_per_s for run in runs]),
        p50_ms=_median([run.ttft_ms(50) for run in runs]),
        p99_ms=_median([run.ttft_ms(99) for run in runs]),
        non_2xx=sum(run.errors for run in runs),
        note=note,
        runs=[
            {
                "streams": len(run.samples),
                "errors": run.errors,
                "error_examples": run.error_examples,
                "elapsed_s": run.elapsed_s,
                "streams_per_s": run.streams_per_s,
                "ttft_p50_ms": run.ttft_ms(50),
                "ttft_p99_ms": run.ttft_ms(99),
                "total_p50_ms": run.total_ms(50),
                "total_p99_ms": run.total_ms(99),
                "incremental_share": run.incremental_share,
                "median_spread_ms": run.median_spread_ms,
            }
            for run in runs
        ],
    )
    _apply_costs(row, measured)
    return row


def _show_wrk(result: WrkResult) -> str:
    errors = (
        f", ERRORS {result.non_2xx} non-2xx {result.socket_errors} socket"
        if result.non_2xx or result.socket_errors
        else ""
    )
    latency = f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
    return f"{result.requests_per_s:9,.0f} req/s  {latency}{errors}"


def _show_stream(run: StreamRun) -> str:
    errors = f", ERRORS {run.errors}: {run.error_examples[:1]}" if run.errors else ""
    return (
        f"{run.streams_per_s:9,.1f} streams/s  TTFT p50 {run.ttft_ms(50):7.2f} ms  "
        f"p99 {run.ttft_ms(99):7.2f} ms  incremental {run.incremental_share:.0%}{errors}"
    )
