"""``python -m bench``: start the upstreams and the gateways, run the scenarios, print the table
and write the JSON. Exit status: 0; 1 if any run saw errors, a gateway's usage records do not
match what its clients completed, the soak failed, or the chaos profile lost or left anything;
2 if it could not run at all."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos import run_chaos
from bench.cluster import run_cluster
from bench.fleet import Fleet
from bench.options import Options, parse_options
from bench.proc import Pinning
from bench.profiles import LADDER
from bench.records import RecordCheck
from bench.redis_space import RedisSpace
from bench.report import Row, error_summary, render_table, write_json
from bench.scaling import ScalingSummary, scaling_scenario
from bench.scenarios import Bench
from bench.soak import SoakSummary, soak_scenario
from bench.upstreams import ROOT, Upstreams, nginx_binary, start_upstreams
from bench.wrk import INSTALL_HINT, wrk_binary


def _wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    output = (result.stdout or result.stderr).strip()
    return output.splitlines()[0] if output else ""


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else ""


def _source_state() -> dict[str, object]:
    """The commit and whether the work tree differs from it (the numbers belong to the tree as
    it was, so a digest of the uncommitted diff is kept too)."""
    changed = [line for line in _git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    diff = _git("diff", "HEAD")
    return {
        "commit": _git("rev-parse", "--short", "HEAD").strip(),
        "modified_files": len(changed),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else "",
    }


def _meta(
    options: Options,
    pinning: Pinning,
    upstreams: Upstreams,
    *,
    source: dict[str, object],
    started: float,
    loadavg_start: list[float],
    space: RedisSpace,
) -> dict[str, object]:
    return {
        "mode": options.mode,
        "scenarios": list(options.scenarios),
        "duration_s": options.duration,
        "warmup_s": options.warmup,
        "repeats": options.repeats,
        "aggregate": "median over repeats; errors summed; RSS is the peak (VmHWM)",
        "source": source,
        "python": platform.python_version(),
        "wrk": _wrk_version(),
        "cpus": os.cpu_count(),
        "pinning": pinning.describe(),
        "upstreams": {u.name: u.implementation for u in upstreams.all()},
        "server": (
            "daphne, 1 process, gateway_site.asgi:application; scaling: manage.py serve --workers 1 and 2"
        ),
        "database": "SQLite in a temporary GATEWAY_DATA_DIR per gateway",
        "profiles": {profile.name: profile.describe() for profile in LADDER},
        "redis": f"{space.url}, key prefix {space.prefix} (deleted at the end)",
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "wall_s": round(time.monotonic() - started, 1),
    }


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    scaling: ScalingSummary | None = None
    soak: SoakSummary | None = None


def _measure(options: Options, *, pinning: Pinning, fleet: Fleet, workdir: Path) -> Outcome:
    bench = Bench(options=options, pinning=pinning, fleet=fleet, workdir=workdir)
    bench.check()
    print(
        f"running ({options.mode}: {', '.join(options.scenarios)}): warm-up {options.warmup}s, "
        f"{options.duration}s runs, {options.repeats} repeat(s)",
        flush=True,
    )
    outcome = Outcome(rows=bench.run())
    if "scaling" in options.scenarios:
        rows, outcome.scaling = scaling_scenario(bench)
        outcome.rows += rows
    if "soak" in options.scenarios:
        rows, outcome.soak = soak_scenario(bench, seconds=options.soak_seconds)
        outcome.rows += rows
    return outcome


def run(options: Options) -> int:
    if options.scenarios == ("chaos",):
        return run_chaos(options, source=_source_state())
    if options.scenarios == ("cluster",):
        return run_cluster(options, source=_source_state())
    if wrk_binary() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    started = time.monotonic()
    source = _source_state()  # before the run: the tree may change while it runs
    loadavg_start = list(os.getloadavg())
    space = RedisSpace.for_run(options.redis_url)
    space.check()
    pinning = Pinning.detect()
    if pinning.load_cpu is not None:
        os.sched_setaffinity(0, {pinning.load_cpu})  # the TTFT client runs in this process
    print(f"pinning: {pinning.describe()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in loadavg_start)}")
    print(f"redis: {space.url}, key prefix {space.prefix}")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    fleet: Fleet | None = None
    outcome = Outcome()
    measured = False
    try:
        upstreams = start_upstreams(cpu=pinning.load_cpu, workdir=workdir, use_nginx=options.use_nginx)
        fleet = Fleet(upstreams=upstreams, pinning=pinning, workdir=workdir, space=space)
        for upstream in upstreams.all():
            print(f"upstream {upstream.name}: {upstream.implementation} at {upstream.base_url}")
        if options.use_nginx and nginx_binary() is None:
            print("nginx not found (apt-get install -y nginx-light): the fixed upstream is Python")
        if options.baseline:
            print("reference: bare Django async view on Daphne, same HTTP client (bench/baseline_app.py)")
        outcome = _measure(options, pinning=pinning, fleet=fleet, workdir=workdir)
        measured = True
    finally:
        try:
            if fleet is not None:
                fleet.stop(check=measured)  # checks the usage records of the gateways still running
        finally:
            _clean_up(space, workdir, keep=options.keep)
    meta = _meta(
        options, pinning, upstreams, source=source, started=started, loadavg_start=loadavg_start, space=space
    )
    checks = fleet.record_checks
    extra: dict[str, object] = {
        "usage_records": [check.as_dict() for check in checks],
        "scaling": outcome.scaling.as_dict() if outcome.scaling else None,
        "soak": outcome.soak.as_dict() if outcome.soak else None,
    }
    path = write_json(outcome.rows, meta, directory=options.results_dir, mode=options.label, extra=extra)
    _print_report(outcome, checks, meta)
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    failed = any(row.failed for row in outcome.rows) or not all(check.ok for check in checks)
    return 1 if failed or (outcome.soak is not None and outcome.soak.failed) else 0


def _clean_up(space: RedisSpace, workdir: Path, *, keep: bool) -> None:
    try:
        print(f"redis: deleted {space.delete_all()} key(s) under {space.prefix}")
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _print_report(outcome: Outcome, checks: list[RecordCheck], meta: dict[str, object]) -> None:
    print()
    print(render_table(outcome.rows))
    print()
    print(error_summary(outcome.rows))
    for check in checks:
        print(f"usage records {check.describe()}")
    for summary in (outcome.scaling, outcome.soak):
        if summary is not None:
            print(summary.describe())
    print(
        f"load average {meta['loadavg_start']} -> {meta['loadavg_end']}: the machine is shared, so absolute "
        "numbers drift between runs; compare the ratios measured in the same run."
    )


def main() -> None:
    options = parse_options()
    try:
        sys.exit(run(options))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
