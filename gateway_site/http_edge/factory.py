"""Daphne serving through ``GatewayChannel`` and ``StreamedRequest``."""

from __future__ import annotations

from typing import Any

from daphne.http_protocol import HTTPFactory
from twisted.web.http import _GenericHTTPChannelProtocol

from gateway_site.http_edge.channel import GatewayChannel
from gateway_site.http_edge.limits import EdgeLimits
from gateway_site.http_edge.request import StreamedRequest


class GatewayHTTPFactory(HTTPFactory):  # type: ignore[misc]
    """Daphne's factory (its server's options still apply), building the gateway's channel."""

    def __init__(self, server: Any, *, limits: EdgeLimits | None = None) -> None:
        super().__init__(server)
        self.limits = limits or EdgeLimits.from_settings()

    def protocol(self) -> _GenericHTTPChannelProtocol:
        # Twisted's factory builds each connection by calling ``self.protocol()``; the generic
        # wrapper is what lets a TLS connection negotiate HTTP/2 instead.
        return _GenericHTTPChannelProtocol(GatewayChannel(self.limits))

    def buildProtocol(self, addr: Any) -> _GenericHTTPChannelProtocol:
        protocol: _GenericHTTPChannelProtocol = super().buildProtocol(addr)
        protocol.requestFactory = StreamedRequest
        return protocol
