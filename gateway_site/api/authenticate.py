"""The authenticate stage: the key a request presents (``Authorization: Bearer`` or
``X-API-Key``) or its bearer JWT (``gateway_site.runtime.jwks``), its context in the
configuration snapshot, and the model it asks for, resolved only when the key may use it. A
key, issuer or model the snapshot does not know is looked up again after a revision check, so
what an admin just created works at once."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from gateway_site.api.errors import MethodNotAllowed, ModelNotFound, PayloadTooLarge
from gateway_site.api.exchange import Exchange
from gateway_site.observability.tracing import span
from gateway_site.runtime.process import get_runtime
from gateway_site.runtime.snapshot import ConfigSnapshot
from providers.types import ModelRoute
from quotas.access import model_allowed
from quotas.authentication.keys import key_from_headers
from quotas.authentication.registry import KeyContext
from quotas.authentication.tokens import UnknownIssuer, looks_like_jwt
from quotas.errors import UnknownKey


def require_method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise MethodNotAllowed(f"Method {request.method} is not allowed here; use {method}.")


async def authenticate(request: HttpRequest, exchange: Exchange) -> tuple[ConfigSnapshot, KeyContext]:
    """The current snapshot and the presented key's context in it, the key also noted on
    ``exchange`` for the access log line of a request refused later. A key the snapshot does not
    know is looked up again after a revision check, so a key works the moment it is issued."""
    watcher = get_runtime().watcher
    snapshot = watcher.current()
    with span("auth"):
        presented = key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if presented is not None and looks_like_jwt(presented):
            tokens = get_runtime().tokens()
            try:
                key = await tokens.authenticate(presented, snapshot.keys, snapshot.revision)
            except UnknownIssuer:
                snapshot = await watcher.catch_up(snapshot)
                key = await tokens.authenticate(presented, snapshot.keys, snapshot.revision)
        else:
            try:
                key = snapshot.keys.authenticate(presented)
            except UnknownKey:
                snapshot = await watcher.catch_up(snapshot)
                key = snapshot.keys.authenticate(presented)
    exchange.key = key
    return snapshot, key


def check_declared_size(request: HttpRequest) -> None:
    declared = request.headers.get("content-length", "")
    limit = settings.GATEWAY_MAX_BODY_BYTES
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {limit} bytes.")


def _route_in(snapshot: ConfigSnapshot, key: KeyContext, model: str, exchange: Exchange) -> ModelRoute:
    """The model's route. A model the key may not use is answered exactly as one that does not
    exist (status, body and metric label), so a key cannot learn which models other tenants have."""
    route = snapshot.catalog.models.get(model)
    if route is None or not model_allowed(key.policy, model):
        raise ModelNotFound(f"The model '{model}' does not exist.", param="model")
    exchange.model = model
    return route


async def resolve_route(
    request: HttpRequest, snapshot: ConfigSnapshot, key: KeyContext, model: str, exchange: Exchange
) -> tuple[ConfigSnapshot, KeyContext, ModelRoute]:
    """The public model's route; from here on the request is labelled with the model (an
    existing one only, so metric labels stay bounded). A model the snapshot does not have, or
    does not let the key use, is looked up again after a revision check (with the key's context
    in the newer snapshot), so a model or access rule works the moment it is saved."""
    try:
        return snapshot, key, _route_in(snapshot, key, model, exchange)
    except ModelNotFound:
        newer = await newer_snapshot(request, exchange, snapshot)
        if newer is None:
            raise
    snapshot, key = newer
    return snapshot, key, _route_in(snapshot, key, model, exchange)


async def newer_snapshot(
    request: HttpRequest, exchange: Exchange, snapshot: ConfigSnapshot
) -> tuple[ConfigSnapshot, KeyContext] | None:
    """After a revision check, the newer snapshot with the key's context in it; None when the
    check found nothing new (the refusal stands)."""
    if await get_runtime().watcher.catch_up(snapshot) is snapshot:
        return None
    return await authenticate(request, exchange)
