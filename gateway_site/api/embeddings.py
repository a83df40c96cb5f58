"""``POST /v1/embeddings``: authenticate, parse, resolve the model, admit (rate limits and cost
quotas, like chat: tokens reserved from the input's estimate and settled with the upstream's
count), route, respond. One usage record per admitted request (endpoint ``embeddings``, prompt
tokens priced at the deployment's input price)."""

from __future__ import annotations

from typing import Annotated, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway_site.api.admission import NO_ESTIMATE, admit, estimate_embeddings
from gateway_site.api.body import request_body
from gateway_site.api.endpoint import api_endpoint, tracking
from gateway_site.api.errors import RequestError
from gateway_site.api.exchange import Exchange, UsageTracker
from gateway_site.api.parsing import load_json_object
from gateway_site.api.responses import json_response
from gateway_site.api.views import (
    attempt_headers,
    authenticate,
    check_declared_size,
    require_method,
    resolve_route,
)
from gateway_site.runtime import get_runtime
from gateway_site.tracing import span
from providers.types import Usage

NonEmptyText = Annotated[str, Field(min_length=1)]


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1, max_length=2048)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


def parse_embeddings_request(body: bytes, *, limit: int) -> tuple[str, dict[str, object]]:
    raw = load_json_object(body, limit=limit)
    try:
        parsed = EmbeddingsBody.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = str(first["loc"][0]) if first["loc"] else None
        if first["type"] == "missing":
            raise RequestError(f"Missing required parameter: '{param}'.", param=param) from None
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise RequestError(f"Invalid value for '{param}': {reason}.", param=param) from None
    return parsed.model, raw


@api_endpoint
async def embeddings(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    runtime = get_runtime()
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    model, raw = parse_embeddings_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    snapshot, key, route = await resolve_route(request, snapshot, key, model, exchange)
    router = runtime.router()
    attempt = router.plan(route, catalog=snapshot.catalog)
    with span("limits"):
        admission = await admit(
            runtime.limiter(),
            key=key,
            model=model,
            estimate=NO_ESTIMATE if key.limits.empty else estimate_embeddings(raw),
            deployments=attempt.candidates,
            exchange=exchange,
        )
    tracker = UsageTracker(
        writer=runtime.usage,
        exchange=exchange,
        key=key,
        model=model,
        attempt=attempt,
        body=raw,
        endpoint="embeddings",
        admission=admission,
    )
    with tracking(tracker), attempt_headers(exchange, attempt):
        result = await router.embed(attempt, raw, request_id=exchange.request_id)
        tracker.usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
    return json_response(result.body)
