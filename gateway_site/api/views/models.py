"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models the key may use."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.authenticate import authenticate, newer_snapshot, require_method
from gateway_site.api.endpoint import api_endpoint
from gateway_site.api.errors import ModelNotFound
from gateway_site.api.exchange import Exchange
from gateway_site.api.responses import json_response
from gateway_site.runtime.snapshot import ConfigSnapshot
from providers.types import ModelRoute
from quotas.access import model_allowed
from quotas.authentication.registry import KeyContext


def _model_object(route: ModelRoute) -> dict[str, object]:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": route.owned_by}


@api_endpoint
async def list_models(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    data = [
        _model_object(route)
        for name, route in sorted(snapshot.catalog.models.items())
        if model_allowed(key.policy, name)
    ]
    return json_response({"object": "list", "data": data})


def _visible_model(snapshot: ConfigSnapshot, key: KeyContext, model_id: str) -> ModelRoute | None:
    route = snapshot.catalog.models.get(model_id)
    return route if route is not None and model_allowed(key.policy, model_id) else None


@api_endpoint
async def retrieve_model(request: HttpRequest, exchange: Exchange, model_id: str = "") -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    route = _visible_model(snapshot, key, model_id)
    if route is None and (newer := await newer_snapshot(request, exchange, snapshot)) is not None:
        route = _visible_model(*newer, model_id)
    if route is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return json_response(_model_object(route))
