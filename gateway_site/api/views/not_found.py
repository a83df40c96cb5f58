"""Any other path under ``/v1``: OpenAI's 404."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.endpoint import api_endpoint
from gateway_site.api.errors import NotFound
from gateway_site.api.exchange import Exchange


@api_endpoint
async def not_found(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    raise NotFound(f"Unknown endpoint: {request.method} {request.path}.")
