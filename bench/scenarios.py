"""The scenarios. Each runs its targets at the same concurrency levels, alternately (direct,
bare Django, gateway, direct, ...) so that all of them see the same machine:

- ``fixed``: the nearly free fixed-response upstream (what a server in front of it costs), with
  the ladder of gateway profiles (``bench.profiles``): ``gateway-auth``, ``gateway-limits``,
  ``gateway-full``, so each added cost is visible on its own;
- ``delay50``: the 50 ms upstream, up to c=256 (no collapse with concurrency);
- ``stream-ttft``: streaming through the gateway versus direct: time to first content chunk, and
  whether chunks are relayed as they arrive (the asyncio client in ``bench.ttft``);
- ``scaling`` and ``soak``: ``bench.scaling`` and ``bench.soak``.

Targets: ``direct`` (the upstream itself), ``django-bare`` (``bench.baseline_app``, the
reference of the throughput target in docs/benchmarks.md) and the gateways; in ``delay50`` and
``stream-ttft`` the target ``gateway`` is the full-path profile. The CPU and memory of the
server processes are read from /proc around each measured run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

import httpx

from bench.fleet import Fleet
from bench.gateway import MODELS, DaphneServer, Gateway
from bench.options import Options
from bench.payloads import chat_request
from bench.proc import Pinning, cpu_snapshot, cpu_spent, memory
from bench.profiles import FULL, LADDER, REQUESTS_PER_MINUTE
from bench.report import Row, compare
from bench.ttft import StreamRun, run_streams
from bench.upstreams import Upstream
from bench.wrk import WrkResult, lua_script, run_wrk

Result = TypeVar("Result", WrkResult, StreamRun)

DIRECT, BARE, GATEWAY = "direct", "django-bare", "gateway"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    model: str
    key: str | None
    server: DaphneServer | None  # the process(es) charged with CPU and memory; None for direct

    def pids(self) -> list[int]:
        if isinstance(self.server, Gateway):
            return self.server.pids()
        return [] if self.server is None else [self.server.service.pid]

    def completed(self, requests: int, *, in_flight: int = 0) -> None:
        """Count requests a client completed through this target (for the usage-record check)."""
        if isinstance(self.server, Gateway):
            self.server.tally.add(requests, in_flight=in_flight)

    def log_tail(self) -> str:
        return "" if self.server is None else self.server.service.log_tail()


def gateway_target(name: str, gateway: Gateway, model: str) -> Target:
    return Target(name, gateway.chat_url, model, gateway.key, gateway)


@dataclass(frozen=True)
class Cost:
    """The server's CPU per request over one measured run, split by thread kind, and its memory
    (for several worker processes: CPU summed over them, memory the largest worker's)."""

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
    """Run ``action`` and charge the target processes' CPU time over that span to the requests
    it made (``count``)."""
    pids = target.pids()
    if target.server is None or not pids:
        return Measurement(action(), None)
    before = {pid: cpu_snapshot(pid) for pid in pids}
    result = action()
    if not target.server.service.alive() or target.pids() != pids:
        raise RuntimeError(f"{target.name} (or a worker) died during the run:\n{target.log_tail()}")
    spent = [cpu_spent(pid, before[pid], cpu_snapshot(pid)) for pid in pids]
    mem = [memory(pid) for pid in pids]
    per_request = 1000 / max(1, count(result))
    return Measurement(
        result,
        Cost(
            cpu_ms_per_request=sum(s.total for s in spent) * per_request,
            main_thread_ms_per_request=sum(s.main for s in spent) * per_request,
            background_threads_ms_per_request=sum(s.background for s in spent) * per_request,
            short_lived_threads_ms_per_request=sum(s.short_lived for s in spent) * per_request,
            rss_mb=max(m.rss_mb for m in mem),
            peak_rss_mb=max(m.peak_rss_mb for m in mem),
        ),
    )


class Bench:
    def __init__(self, *, options: Options, pinning: Pinning, fleet: Fleet, workdir: Path) -> None:
        self.options = options
        self.pinning = pinning
        self.fleet = fleet
        self.workdir = workdir

    def targets(
        self, upstream: Upstream, *, ladder: bool = False, with_baseline: bool = True
    ) -> list[Target]:
        """direct, the bare Django view (when asked for), then either the ladder of gateway
        profiles or the full-path gateway named ``gateway``."""
        targets = [Target(DIRECT, upstream.chat_url, f"upstream-{upstream.name}", None, None)]
        if with_baseline and self.options.baseline:
            baseline = self.fleet.baseline(upstream)
            targets.append(Target(BARE, baseline.chat_url, f"upstream-{upstream.name}", None, baseline))
        model = MODELS[upstream.name]
        if ladder:
            targets += [gateway_target(p.name, self.fleet.gateway(p), model) for p in LADDER]
        else:
            targets.append(gateway_target(GATEWAY, self.fleet.gateway(FULL), model))
        return targets

    # --- checks before the load ---------------------------------------------------------------

    def check_target(self, target: Target) -> None:
        """One request; fail loudly before any load if the answer is wrong, or if the rate
        limits did not run where the profile has them (their headers) or ran where it has not."""
        headers = {"Content-Type": "application/json"}
        if target.key:
            headers["Authorization"] = f"Bearer {target.key}"
        response = httpx.post(target.url, content=chat_request(target.model), headers=headers, timeout=10)
        target.completed(1)
        if response.status_code != 200 or "choices" not in response.json():
            raise RuntimeError(
                f"{target.name} check failed for {target.model}: HTTP {response.status_code} "
                f"{response.text[:300]}\n{target.log_tail()}"
            )
        limit = response.headers.get("x-ratelimit-limit-requests")
        if isinstance(target.server, Gateway):
            expected = str(REQUESTS_PER_MINUTE) if target.server.profile.tier else None
            if limit != expected:
                raise RuntimeError(
                    f"{target.name}: x-ratelimit-limit-requests {limit!r}, expected {expected!r}"
                )
        overhead = response.headers.get("x-gateway-overhead-ms")
        print(
            f"  check {target.name} {target.model}: HTTP 200"
            + (f", x-gateway-overhead-ms {overhead}" if overhead else "")
            + (f", x-ratelimit-limit-requests {limit}" if limit else "")
        )

    def check_stream(self, target: Target) -> None:
        run = run_streams(
            target.url,
            body=chat_request(target.model, stream=True),
            key=target.key,
            concurrency=1,
            seconds=0.01,
        )
        target.completed(len(run.samples) + run.errors)
        if run.errors or not run.samples:
            raise RuntimeError(f"{target.name} streaming check failed: {run.error_examples}")
        print(f"  check {target.name} {target.model}: streamed, TTFT {run.samples[0].ttft_s * 1000:.1f} ms")

    def check(self) -> None:
        scenarios = self.options.scenarios
        upstreams = self.fleet.upstreams
        if "fixed" in scenarios:
            for target in self.targets(upstreams.fixed, ladder=True)[1:]:
                self.check_target(target)
        if "delay" in scenarios:
            for target in self.targets(upstreams.delay)[1:]:
                self.check_target(target)
        if "stream" in scenarios:
            self.check_stream(self.targets(upstreams.stream, with_baseline=False)[-1])

    # --- the common loop ------------------------------------------------------------------------

    def level(
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
                    f"  {scenario:<11} {target.name:<14} c={concurrency:<4} run {repeat + 1}/{opts.repeats}: "
                    f"{show(m.result)}{cost}",
                    flush=True,
                )
        return measured

    # --- wrk scenarios ------------------------------------------------------------------------

    def wrk_levels(
        self, scenario: str, targets: list[Target], levels: tuple[int, ...], *, load_cpu: int | str | None
    ) -> list[Row]:
        """wrk against every target at each level (wrk pinned to ``load_cpu``)."""
        scripts: dict[str, Path] = {}
        for target in targets:
            path = self.workdir / f"{scenario}-{target.name}.lua"
            sheds = isinstance(target.server, Gateway)
            path.write_text(lua_script(body=chat_request(target.model), key=target.key, count_sheds=sheds))
            scripts[target.name] = path

        def run(target: Target, concurrency: int, seconds: int) -> WrkResult:
            result = run_wrk(
                target.url,
                script=scripts[target.name],
                connections=concurrency,
                seconds=seconds,
                cpu=load_cpu,
            )
            target.completed(result.requests - result.shed, in_flight=concurrency)  # sheds: no record
            return result

        rows: list[Row] = []
        for concurrency in levels:
            measured = self.level(targets, concurrency, run, lambda r: r.requests, show_wrk, scenario)
            level = [wrk_row(scenario, name, concurrency, ms) for name, ms in measured.items()]
            compare(level)
            rows += level
        return rows

    def wrk_scenario(
        self, scenario: str, upstream: Upstream, levels: tuple[int, ...], *, ladder: bool
    ) -> list[Row]:
        targets = self.targets(upstream, ladder=ladder)
        return self.wrk_levels(scenario, targets, levels, load_cpu=self.pinning.load_cpu)

    # --- streaming ----------------------------------------------------------------------------

    def stream_scenario(self, levels: tuple[int, ...]) -> list[Row]:
        targets = self.targets(self.fleet.upstreams.stream, with_baseline=False)

        def run(target: Target, concurrency: int, seconds: int) -> StreamRun:
            result = run_streams(
                target.url,
                body=chat_request(target.model, stream=True),
                key=target.key,
                concurrency=concurrency,
                seconds=seconds,
            )
            target.completed(len(result.samples), in_flight=result.errors)
            return result

        rows: list[Row] = []
        for concurrency in levels:
            measured = self.level(
                targets, concurrency, run, lambda r: len(r.samples) + r.errors, _show_stream, "stream-ttft"
            )
            level = [_stream_row(name, concurrency, ms) for name, ms in measured.items()]
            compare(level)
            rows += level
        return rows

    def run(self) -> list[Row]:
        rows: list[Row] = []
        upstreams = self.fleet.upstreams
        if "fixed" in self.options.scenarios:
            rows += self.wrk_scenario("fixed", upstreams.fixed, self.options.concurrency, ladder=True)
        if "delay" in self.options.scenarios:
            rows += self.wrk_scenario(
                "delay50", upstreams.delay, self.options.delay_concurrency, ladder=False
            )
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


def wrk_row(scenario: str, target: str, concurrency: int, measured: list[Measurement[WrkResult]]) -> Row:
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
        shed=sum(r.shed for r in runs),
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


def show_wrk(result: WrkResult) -> str:
    errors = (
        f", ERRORS {result.non_2xx} non-2xx {result.socket_errors} socket"
        if result.non_2xx or result.socket_errors
        else ""
    )
    latency = f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
    shed = f", {result.shed} shed (503)" if result.shed else ""
    return f"{result.requests_per_s:9,.0f} req/s  {latency}{errors}{shed}"


def _show_stream(run: StreamRun) -> str:
    errors = f", ERRORS {run.errors}: {run.error_examples[:1]}" if run.errors else ""
    return (
        f"{run.streams_per_s:9,.1f} streams/s  TTFT p50 {run.ttft_ms(50):7.2f} ms  "
        f"p99 {run.ttft_ms(99):7.2f} ms  incremental {run.incremental_share:.0%}{errors}"
    )
