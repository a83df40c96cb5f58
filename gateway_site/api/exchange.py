"""One request at the edge: its ids and timings (for ``x-request-id`` and
``x-gateway-overhead-ms``), the headers every response of it carries, and what is known of it
(its key and model) for the line it is logged with."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from quotas.authentication.registry import KeyContext

logger = logging.getLogger("gateway.api")


@dataclass(slots=True)
class Exchange:
    request_id: str
    client_request_id: str
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)
    upstream_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # added to every response (x-ratelimit-*)
    model: str = ""  # the public model, once known to exist (a metrics label)
    key: KeyContext | None = None  # once authenticated
    tracked: bool = False  # admitted: its usage event counts it (metrics) and logs its access line

    @property
    def public_id(self) -> str:
        return self.client_request_id or self.request_id

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_seconds) * 1000)
