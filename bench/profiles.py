"""The gateway configurations measured, one rung of the ladder each, so that every added cost is
visible on its own (docs/benchmarks.md, "The gateway profiles"):

- ``gateway-auth``: the embedded defaults, no Redis; a key whose tenant has no tier and no
  quota. Auth, model access and metrics; the usage event goes to the in-process writer.
- ``gateway-limits``: ``REDIS_URL`` set; the tenant has a ``sliding_window`` tier with requests
  and tokens per minute and ``max_parallel``, all far above what the bench can reach. Admission
  and settlement are one Redis script each; the usage event is appended to the Redis outbox
  stream by the settlement's round trip and drained into the database by the gateway's own
  ``usage-outbox`` thread (no Celery broker).
- ``gateway-full``: the same plus a hard monthly cost quota on the tenant, far above what the
  bench can spend: the full path the targets of docs/benchmarks.md are set for.

Each profile is turned into the tiers and tenants sections of the ``applyconfig`` YAML here."""

from __future__ import annotations

from dataclasses import dataclass

TENANT = "bench"
TIER = "bench-unlimited"
# High enough never to refuse at any load the bench can make (tens of thousands of requests
# per minute, under a hundred tokens each), and within the fields' range (PositiveIntegerField).
REQUESTS_PER_MINUTE = 1_000_000_000
TOKENS_PER_MINUTE = 1_000_000_000
MAX_PARALLEL = 100_000
QUOTA_LIMIT_USD = "1000000.00"  # a request costs about $0.00001


@dataclass(frozen=True)
class Profile:
    name: str
    redis: bool
    tier: bool
    quota: bool

    def describe(self) -> str:
        parts = ["auth, model access, metrics"]
        if self.tier:
            parts.append(
                f"rate tier on Redis (sliding_window, {REQUESTS_PER_MINUTE:,} req/min, "
                f"{TOKENS_PER_MINUTE:,} tokens/min, max_parallel {MAX_PARALLEL:,})"
            )
        if self.quota:
            parts.append(f"hard monthly cost quota ${QUOTA_LIMIT_USD}")
        parts.append(
            "usage event to the Redis outbox (settlement's round trip), drained by the gateway's "
            "usage-outbox thread"
            if self.redis
            else "usage event to the in-process writer"
        )
        return "; ".join(parts)

    def config_yaml(self) -> str:
        """The ``tiers:`` and ``tenants:`` sections for this profile."""
        lines: list[str] = []
        if self.tier:
            lines += [
                "tiers:",
                f"  - name: {TIER}",
                "    algorithm: sliding_window",
                f"    requests_per_minute: {REQUESTS_PER_MINUTE}",
                f"    tokens_per_minute: {TOKENS_PER_MINUTE}",
                f"    max_parallel: {MAX_PARALLEL}",
            ]
        lines += ["tenants:", f"  - name: {TENANT}"]
        if self.tier:
            lines.append(f"    tier: {TIER}")
        if self.quota:
            lines += [
                "    quotas:",
                "      - period: month",
                f'        limit_usd: "{QUOTA_LIMIT_USD}"',
                "        hard: true",
            ]
        return "\n".join(lines) + "\n"


AUTH = Profile("gateway-auth", redis=False, tier=False, quota=False)
LIMITS = Profile("gateway-limits", redis=True, tier=True, quota=False)
FULL = Profile("gateway-full", redis=True, tier=True, quota=True)
LADDER = (AUTH, LIMITS, FULL)
