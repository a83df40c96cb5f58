"""``python -m bench``: start the upstreams and the gateway, run the scenarios, print the table
and write the JSON. Exit status: 0, 1 if any run saw errors, 2 if it could not run at all."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.gateway import DaphneServer, gateway_env, prepare_database, start_baseline, start_gateway
from bench.options import Options, parse_options
from bench.proc import Pinning
from bench.report import Row, error_summary, render_table, write_json
from bench.scenarios import Bench
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
) -> dict[str, object]:
    return {
        "mode": options.mode,
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
        "server": "daphne, 1 process, gateway_site.asgi:application",
        "database": "SQLite in a temporary GATEWAY_DATA_DIR, no Redis (embedded defaults)",
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "wall_s": round(time.monotonic() - started, 1),
    }


def run(options: Options) -> int:
    if wrk_binary() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    started = time.monotonic()
    source = _source_state()  # before the run: the tree may change while it runs
    loadavg_start = list(os.getloadavg())
    pinning = Pinning.detect()
    if pinning.load_cpu is not None:
        os.sched_setaffinity(0, {pinning.load_cpu})  # the TTFT client runs in this process
    print(f"pinning: {pinning.describe()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in loadavg_start)}")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    upstreams: Upstreams | None = None
    gateway = None
    baselines: dict[str, DaphneServer] = {}
    rows: list[Row] = []
    try:
        upstreams = start_upstreams(cpu=pinning.load_cpu, workdir=workdir, use_nginx=options.use_nginx)
        for upstream in upstreams.all():
            print(f"upstream {upstream.name}: {upstream.implementation} at {upstream.base_url}")
        if options.use_nginx and nginx_binary() is None:
            print("nginx not found (apt-get install -y nginx-light): the fixed upstream is Python")
        env = gateway_env(workdir / "data")
        key = prepare_database(env=env, upstreams=upstreams, workdir=workdir)
        gateway = start_gateway(env=env, key=key, cpu=pinning.gateway_cpu, workdir=workdir)
        print(f"gateway: daphne pid {gateway.service.pid} at {gateway.base_url} (data in {workdir / 'data'})")
        if options.baseline:
            for upstream in (upstreams.fixed, upstreams.delay):
                baselines[upstream.name] = start_baseline(upstream, cpu=pinning.gateway_cpu, workdir=workdir)
            print("reference: bare Django async view on Daphne, same HTTP client (bench/baseline_app.py)")
        bench = Bench(
            options=options,
            pinning=pinning,
            gateway=gateway,
            upstreams=upstreams,
            baselines=baselines,
            workdir=workdir,
        )
        bench.check()
        print(
            f"running ({options.mode}): warm-up {options.warmup}s, {options.duration}s runs, "
            f"{options.repeats} repeat(s)",
            flush=True,
        )
        rows = bench.run()
        meta = _meta(options, pinning, upstreams, source=source, started=started, loadavg_start=loadavg_start)
    finally:
        for server in [*baselines.values(), *([gateway] if gateway else [])]:
            server.service.stop()
        if upstreams is not None:
            upstreams.stop()
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    path = write_json(rows, meta, directory=options.results_dir, mode=options.mode)
    print()
    print(render_table(rows))
    print()
    print(error_summary(rows))
    print(
        f"load average {meta['loadavg_start']} -> {meta['loadavg_end']}: the machine is shared, so absolute "
        "numbers drift between runs; compare the ratios measured in the same run."
    )
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any(row.failed for row in rows) else 0


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
