"""The processes of one run: the upstreams, the bare Django references and the gateways, started
when a scenario first needs them and all stopped at the end. A gateway is checked before it
stops: its usage records against what its clients completed (``bench.records``) and, for a
profile with a quota, the spend settled in Redis."""

from __future__ import annotations

from pathlib import Path

from bench.gateway import (
    DaphneServer,
    Gateway,
    Installation,
    install,
    start_baseline,
    start_gateway,
    start_serve,
)
from bench.proc import Pinning
from bench.profiles import Profile
from bench.records import RecordCheck, check_records
from bench.redis_space import RedisSpace
from bench.upstreams import Upstream, Upstreams


class Fleet:
    def __init__(self, *, upstreams: Upstreams, pinning: Pinning, workdir: Path, space: RedisSpace) -> None:
        self.upstreams = upstreams
        self.pinning = pinning
        self.workdir = workdir
        self.space = space
        self._gateways: dict[str, Gateway] = {}
        self._baselines: dict[str, DaphneServer] = {}
        self.record_checks: list[RecordCheck] = []

    def _install(self, name: str, profile: Profile) -> Installation:
        return install(
            name,
            profile,
            upstreams=self.upstreams,
            workdir=self.workdir,
            redis_url=self.space.url,
            redis_prefix=self.space.gateway_prefix(name),
        )

    def gateway(self, profile: Profile, *, name: str | None = None) -> Gateway:
        """The Daphne gateway of ``profile`` (named ``name``, by default the profile's name),
        pinned to the gateway CPU, started on first use."""
        name = name or profile.name
        if name not in self._gateways:
            installation = self._install(name, profile)
            gateway = start_gateway(installation, cpu=self.pinning.gateway_cpu, workdir=self.workdir)
            self._gateways[name] = gateway
            print(f"{name}: daphne pid {gateway.service.pid} at {gateway.base_url}: {profile.describe()}")
        return self._gateways[name]

    def serve(self, profile: Profile, *, workers: int, name: str) -> Gateway:
        """``manage.py serve --workers N`` with ``profile``, on every CPU."""
        if name in self._gateways:
            raise RuntimeError(f"{name} is already running")
        installation = self._install(name, profile)
        gateway = start_serve(installation, workers=workers, cpus=self.pinning.all_cpus, workdir=self.workdir)
        self._gateways[name] = gateway
        print(
            f"{name}: manage.py serve --workers {workers}, pid {gateway.service.pid} "
            f"(workers {', '.join(map(str, gateway.pids()))}) at {gateway.base_url}, "
            f"on CPUs {self.pinning.all_cpus or 'all'}"
        )
        return gateway

    def baseline(self, upstream: Upstream) -> DaphneServer:
        if upstream.name not in self._baselines:
            self._baselines[upstream.name] = start_baseline(
                upstream, cpu=self.pinning.gateway_cpu, workdir=self.workdir
            )
        return self._baselines[upstream.name]

    def retire(self, gateway: Gateway) -> RecordCheck:
        """Check the gateway's usage records (while it still drains), then stop it."""
        try:
            quota = (
                (lambda: self.space.quota_spent_usd(gateway.redis_prefix or ""))
                if gateway.profile.quota and gateway.redis_prefix
                else None
            )
            check = check_records(
                gateway.name, database=gateway.database, tally=gateway.tally, quota_spent=quota
            )
            self.record_checks.append(check)
            print(f"  usage records {check.describe()}", flush=True)
            return check
        finally:
            gateway.service.stop()
            self._gateways.pop(gateway.name, None)

    def stop(self, *, check: bool = True) -> None:
        """Stop every gateway still running (checking its usage records first unless the run
        already failed), then the references and the upstreams."""
        try:
            for gateway in list(self._gateways.values()):
                if check and gateway.service.alive():
                    self.retire(gateway)
        finally:
            for gateway in self._gateways.values():
                gateway.service.stop()
            for baseline in self._baselines.values():
                baseline.service.stop()
            self.upstreams.stop()
