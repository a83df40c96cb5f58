"""Rendering a scrape in the Prometheus text format, and who may read it: clients from
``GATEWAY_METRICS_ALLOWED_NETWORKS`` presenting ``GATEWAY_METRICS_TOKEN`` when one is set. The
view that gathers the scrape-time values is ``gateway_site.api.views.metrics``."""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client.exposition import choose_encoder

from gateway_site.env import Network
from gateway_site.observability.metrics import (
    ScrapeState,
    TenantBlind,
    exposition_registry,
)


def client_allowed(remote_addr: str, networks: tuple[Network, ...]) -> bool:
    """Whether the client address lies in one of ``networks`` (an IPv4-mapped IPv6 address
    counts as its IPv4 address; an absent or unparsable address is not allowed)."""
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def token_accepted(authorization: str | None, token: str) -> bool:
    """No token configured, or ``Bearer <token>`` (compared in constant time)."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def exposition(state: ScrapeState, *, blind: TenantBlind | None, accept: str) -> tuple[bytes, str]:
    """The scrape's body and content type (the format ``accept`` asks for); tenant-blind when
    ``blind`` says which models and deployments every tenant may see."""
    encoder, content_type = choose_encoder(accept)
    return encoder(exposition_registry(state, blind=blind)), content_type
