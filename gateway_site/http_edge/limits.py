"""The deadlines and sizes the HTTP layer enforces before the application sees a request."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from twisted.web.http import HTTPChannel


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """``header_seconds``: from a connection's start (or a request's first byte on a kept-alive
    connection) to the end of its headers. ``body_seconds``: from the end of the headers to the
    end of the body. The header section's size and field count are Twisted's own limits."""

    header_seconds: float
    body_seconds: float
    header_bytes: int = HTTPChannel.totalHeadersSize
    header_fields: int = HTTPChannel.maxHeaders

    @classmethod
    def from_settings(cls) -> EdgeLimits:
        return cls(
            header_seconds=settings.GATEWAY_HEADER_TIMEOUT_SECONDS,
            body_seconds=settings.GATEWAY_BODY_TIMEOUT_SECONDS,
        )
