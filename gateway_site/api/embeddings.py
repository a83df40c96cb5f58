"""``POST /v1/embeddings``: authenticate, parse, resolve the model, admit (rate limits and cost
quotas, like chat: tokens reserved from the input's estimate and settled with the upstream's
count), route, respond. One usage record per admitted request (endpoint ``embeddings``, prompt
tokens priced at the deployment's input price)."""

from __future__ import annotations

from typing import Annotated, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from pydantic import BaseModel, ConfigDict, Field

from gateway_site.api.admission import NO_ESTIMATE, estimate_embeddings
from gateway_site.api.body import request_body
from gateway_site.api.body_bounds import MAX_EMBEDDING_INPUTS, BodyBounds, check_length, check_maximum
from gateway_site.api.endpoint import model_endpoint, settles
from gateway_site.api.exchange import Exchange
from gateway_site.api.parsing import Integer, load_json_object, normalize_integers, validated
from gateway_site.api.responses import json_response
from gateway_site.api.views import (
    admit_request,
    attempt_headers,
    authenticate,
    check_declared_size,
    require_method,
    resolve_route,
)
from gateway_site.runtime import get_runtime
from providers.types import Usage

NonEmptyText = Annotated[str, Field(min_length=1)]
Tokens = Annotated[list[int], Field(min_length=1)]


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1)]
        | Tokens
        | Annotated[list[Tokens], Field(min_length=1)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[Integer, Field(ge=1)] | None = None
    user: str | None = None


def _check_input_sizes(value: object, *, bounds: BodyBounds) -> None:
    """At most 2048 inputs (OpenAI's limit), and no token array longer than the bound. A flat
    array is one input: integers (its tokens) or strings (one input each)."""
    if not isinstance(value, list) or not value:
        return
    if isinstance(value[0], int):
        check_length(value, param="input", limit=bounds.embedding_input_tokens)
        return
    check_length(value, param="input", limit=MAX_EMBEDDING_INPUTS)
    for index, item in enumerate(value):
        check_length(item, param=f"input[{index}]", limit=bounds.embedding_input_tokens)


def parse_embeddings_request(
    body: bytes, *, limit: int, bounds: BodyBounds | None = None
) -> tuple[str, dict[str, object]]:
    """The model and the body to forward; ``bounds`` defaults to the settings'."""
    bounds = bounds or BodyBounds.from_settings()
    raw = load_json_object(body, limit=limit, bounds=bounds)
    _check_input_sizes(raw.get("input"), bounds=bounds)
    parsed = validated(EmbeddingsBody, raw)
    check_maximum(parsed.dimensions, param="dimensions", limit=bounds.embedding_dimensions)
    normalize_integers(raw, ("dimensions",))
    return parsed.model, raw


@model_endpoint
async def embeddings(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    runtime = get_runtime()
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    model, raw = parse_embeddings_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    snapshot, key, route = await resolve_route(request, snapshot, key, model, exchange)
    router = runtime.router()
    attempt = router.plan(route, catalog=snapshot.catalog)
    tracker = await admit_request(
        runtime,
        key=key,
        model=model,
        estimate=NO_ESTIMATE if key.limits.empty else estimate_embeddings(raw),
        attempt=attempt,
        exchange=exchange,
        body=raw,
        endpoint="embeddings",
    )
    with settles(tracker), attempt_headers(exchange, attempt):
        result = await router.embed(attempt, raw, request_id=exchange.request_id)
        tracker.usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
    return json_response(result.body)
