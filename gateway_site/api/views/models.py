"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models the key may use, in OpenAI's shape,
or in the Messages API's when the client sends ``anthropic-version`` (the Anthropic SDKs do);
then its errors are in Anthropic's envelope too."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from gateway_site.api.authenticate import authenticate, newer_snapshot, require_method
from gateway_site.api.dialects.messages.dialect import MESSAGES, REQUEST_ID_HEADER
from gateway_site.api.dialects.messages.models import model_object as anthropic_model
from gateway_site.api.dialects.messages.models import model_page, page_limit
from gateway_site.api.endpoint import ApiView, api_endpoint
from gateway_site.api.errors import ModelNotFound, RequestError
from gateway_site.api.exchange import Exchange
from gateway_site.api.responses import json_response
from gateway_site.runtime.snapshot import ConfigSnapshot
from providers.types import ModelRoute
from quotas.access import model_allowed
from quotas.authentication.registry import KeyContext

ANTHROPIC_VERSION = "anthropic-version"


def _model_object(route: ModelRoute) -> dict[str, object]:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": route.owned_by}


def _anthropic(request: HttpRequest) -> bool:
    return ANTHROPIC_VERSION in request.headers


async def _list_models(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    routes = [
        route for name, route in sorted(snapshot.catalog.models.items()) if model_allowed(key.policy, name)
    ]
    if _anthropic(request):
        limit = page_limit(request.GET.get("limit"))
        if limit is None:
            raise RequestError("'limit' must be an integer from 1 to 1000.", param="limit")
        return json_response(model_page(routes, request.GET, limit=limit))
    return json_response({"object": "list", "data": [_model_object(route) for route in routes]})


def _visible_model(snapshot: ConfigSnapshot, key: KeyContext, model_id: str) -> ModelRoute | None:
    route = snapshot.catalog.models.get(model_id)
    return route if route is not None and model_allowed(key.policy, model_id) else None


async def _retrieve_model(request: HttpRequest, exchange: Exchange, model_id: str = "") -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    route = _visible_model(snapshot, key, model_id)
    if route is None and (newer := await newer_snapshot(request, exchange, snapshot)) is not None:
        route = _visible_model(*newer, model_id)
    if route is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return json_response(anthropic_model(route) if _anthropic(request) else _model_object(route))


def _by_dialect(view: ApiView) -> ApiView:
    """The view under the endpoint of the dialect the client speaks (by ``anthropic-version``)."""
    openai, anthropic = (
        api_endpoint(view),
        api_endpoint(view, dialect=MESSAGES, request_id_header=REQUEST_ID_HEADER),
    )

    async def dispatch(request: HttpRequest, **kwargs: str) -> HttpResponseBase:
        return await (anthropic if _anthropic(request) else openai)(request, **kwargs)

    return csrf_exempt(dispatch)


list_models = _by_dialect(_list_models)
retrieve_model = _by_dialect(_retrieve_model)
