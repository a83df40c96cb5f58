"""``scaling``: the target "``manage.py serve --workers 2`` on two cores gives at least 1.8x one
worker" (docs/benchmarks.md). The full-path gateway (``bench.profiles.FULL``) under
``manage.py serve --workers 1`` and under ``--workers 2``, each a fresh installation with a
Redis prefix of its own, both running, measured alternately with the direct upstream: wrk at
c=64 on the fixed upstream.

Nothing of the gateway is pinned here (two workers need both cores), and wrk is not pinned
either: both are started on every CPU (``Pinning.all_cpus``; they would otherwise inherit the
harness's own pinning to the load CPU). The fixed upstream stays on the load CPU. The load
generator, the upstream and redis-server therefore take CPU time the workers could use: the
ratio is a lower bound of what two cores give."""

from __future__ import annotations

from dataclasses import dataclass

from bench.gateway import MODELS
from bench.profiles import FULL
from bench.report import Row
from bench.scenarios import DIRECT, Bench, Target, gateway_target

CONCURRENCY = 64
TARGET_RATIO = 1.8
WORKERS = (1, 2)


@dataclass(frozen=True)
class ScalingSummary:
    concurrency: int
    workers1_requests_per_s: float
    workers2_requests_per_s: float

    @property
    def ratio(self) -> float:
        return (
            self.workers2_requests_per_s / self.workers1_requests_per_s
            if self.workers1_requests_per_s
            else 0.0
        )

    def describe(self) -> str:
        verdict = "meets" if self.ratio >= TARGET_RATIO else "below"
        return (
            f"scaling: serve --workers 2 / --workers 1 at c={self.concurrency} = "
            f"{self.workers2_requests_per_s:,.0f} / {self.workers1_requests_per_s:,.0f} req/s = "
            f"{self.ratio:.2f}x ({verdict} the target of {TARGET_RATIO}x; a lower bound: wrk, the "
            "upstream and Redis share the two cores with the workers)"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "concurrency": self.concurrency,
            "workers1_requests_per_s": self.workers1_requests_per_s,
            "workers2_requests_per_s": self.workers2_requests_per_s,
            "ratio": self.ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": self.ratio >= TARGET_RATIO,
            "pinning": "serve and wrk on every CPU (taskset); upstreams on the load CPU",
        }


def scaling_scenario(bench: Bench) -> tuple[list[Row], ScalingSummary]:
    fleet = bench.fleet
    upstream = fleet.upstreams.fixed
    servers = [fleet.serve(FULL, workers=n, name=f"workers-{n}") for n in WORKERS]
    targets = [Target(DIRECT, upstream.chat_url, f"upstream-{upstream.name}", None, None)]
    targets += [gateway_target(server.name, server, MODELS["fixed"]) for server in servers]
    for target in targets[1:]:
        bench.check_target(target)
    rows = bench.wrk_levels("scaling", targets, (CONCURRENCY,), load_cpu=bench.pinning.all_cpus)
    for server in servers:
        fleet.retire(server)
    by_target = {row.target: row.requests_per_s for row in rows}
    summary = ScalingSummary(
        concurrency=CONCURRENCY,
        workers1_requests_per_s=by_target["workers-1"],
        workers2_requests_per_s=by_target["workers-2"],
    )
    return rows, summary
