"""Command-line options. The defaults are a quick run (a few minutes); ``--full`` is
the full method of docs/benchmarks.md (warm-up 5 s, 15 s runs, three repeats, median
reported). The soak runs only when asked for (``--only soak``): it lasts ``--soak-seconds``
(600) on its own. So does the chaos profile (``--only chaos``, alone: it owns its Redis,
PostgreSQL and upstream; about 6 minutes, ``--chaos-quick`` about 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.redis_space import DEFAULT_URL

SCENARIOS = ("fixed", "delay", "stream", "scaling", "soak", "chaos", "cluster")
DEFAULT_SCENARIOS = ("fixed", "delay", "stream", "scaling")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    repeats: int
    concurrency: tuple[int, ...]
    delay_concurrency: tuple[int, ...]
    stream_concurrency: tuple[int, ...]
    scenarios: tuple[str, ...]
    use_nginx: bool
    baseline: bool
    keep: bool
    results_dir: Path
    soak_seconds: int
    redis_url: str
    chaos_quick: bool = False
    chaos_concurrency: int = 16
    chaos_burst: int = 400
    chaos_on_redis_error: str = "open"

    @property
    def mode(self) -> str:
        full = self.duration >= 15 and self.warmup >= 5 and self.repeats >= 3
        return "full" if full else "quick"

    @property
    def label(self) -> str:
        """The results file's suffix: the mode, and the scenarios when not the default ones."""
        chosen = "" if self.scenarios == DEFAULT_SCENARIOS else "-" + "-".join(self.scenarios)
        return self.mode + chosen


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas") from None
    if not levels or any(level < 1 or level > 1024 for level in levels):
        raise argparse.ArgumentTypeError(f"{text!r}: each concurrency must be 1..1024")
    return levels


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the gateway against its upstreams, direct versus through the gateway.",
    )
    parser.add_argument("--duration", type=_bounded(1, 120), default=8, help="Seconds per measured run (8).")
    parser.add_argument(
        "--warmup", type=_bounded(0, 60), default=2, help="Warm-up seconds before each level (2)."
    )
    parser.add_argument(
        "--repeats", type=_bounded(1, 9), default=1, help="Measured runs per level; median kept (1)."
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="The full method (docs/benchmarks.md): --duration 15 --warmup 5 --repeats 3.",
    )
    parser.add_argument("--concurrency", type=_levels, default=(1, 16, 64), help="Fixed upstream (1,16,64).")
    parser.add_argument(
        "--delay-concurrency",
        type=_levels,
        default=(1, 16, 64, 256, 1000),
        help="50 ms upstream (1,16,64,256,1000).",
    )
    parser.add_argument(
        "--stream-concurrency", type=_levels, default=(1, 16, 64), help="Streaming TTFT client (1,16,64)."
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        help="Run only these scenarios (repeatable). Default: all but soak and chaos.",
    )
    parser.add_argument(
        "--soak-seconds",
        type=_bounded(180, 3600),
        default=600,
        help="Length of the soak (600; 180..3600), in slices of 60 s. Runs only with --only soak.",
    )
    parser.add_argument(
        "--redis-url", default=DEFAULT_URL, help=f"Redis for the limits and the outbox ({DEFAULT_URL})."
    )
    chaos = parser.add_argument_group("chaos (--only chaos)")
    chaos.add_argument("--chaos-quick", action="store_true", help="Short phases: about 2 minutes in all.")
    chaos.add_argument(
        "--chaos-concurrency", type=_bounded(2, 256), default=16, help="Steady requests in flight (16)."
    )
    chaos.add_argument(
        "--chaos-burst",
        type=_bounded(100, 1000),
        default=400,
        help="Requests at once in an overload burst (400; the run sets GATEWAY_MAX_IN_FLIGHT=64 per worker).",
    )
    chaos.add_argument(
        "--chaos-on-redis-error",
        choices=("open", "closed"),
        default="open",
        help="GATEWAY_ON_REDIS_ERROR of the run's gateway (open: the default of an installation).",
    )
    parser.add_argument("--no-nginx", action="store_true", help="Use the Python fixed-response upstream.")
    parser.add_argument(
        "--no-baseline", action="store_true", help="Skip the bare Django view (django-bare rows)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (logs, database).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if "chaos" in (args.only or ()) and len(set(args.only)) > 1:
        parser.error("--only chaos runs alone (it owns its Redis, PostgreSQL and upstream)")
    if "cluster" in (args.only or ()) and len(set(args.only)) > 1:
        parser.error("--only cluster runs alone (it owns its Redis Cluster and PostgreSQL)")
    if args.full:
        args.duration, args.warmup, args.repeats = (
            max(args.duration, 15),
            max(args.warmup, 5),
            max(args.repeats, 3),
        )
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        repeats=args.repeats,
        concurrency=args.concurrency,
        delay_concurrency=args.delay_concurrency,
        stream_concurrency=args.stream_concurrency,
        scenarios=tuple(s for s in SCENARIOS if s in (args.only or DEFAULT_SCENARIOS)),
        use_nginx=not args.no_nginx,
        baseline=not args.no_baseline,
        keep=args.keep,
        results_dir=args.results_dir,
        soak_seconds=args.soak_seconds,
        redis_url=args.redis_url,
        chaos_quick=args.chaos_quick,
        chaos_concurrency=args.chaos_concurrency,
        chaos_burst=args.chaos_burst,
        chaos_on_redis_error=args.chaos_on_redis_error,
    )
