"""The wrapper every API view runs in: load shedding for the endpoints that call models,
request id and overhead headers, and the one place errors become responses (ours rendered as
OpenAI errors, anything else logged once and answered with a 500 that names the request id)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from gateway_site.api.dialects.base import Dialect
from gateway_site.api.dialects.openai_chat import OPENAI_CHAT
from gateway_site.api.errors import InternalError, RequestError
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.settle import finish
from gateway_site.observability.metrics import observe_response, observe_shed
from gateway_site.observability.request_ids import client_request_id, new_request_id
from gateway_site.runtime.overload import LoadGate
from gateway_site.runtime.process import get_runtime
from providers.errors import UpstreamError
from quotas.errors import AdmissionError, Overloaded

logger = logging.getLogger("gateway.api")

ApiView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def api_endpoint(
    view: ApiView, *, shed: bool = False, dialect: Dialect = OPENAI_CHAT, request_id_header: str = ""
) -> ApiView:
    """``shed``: the endpoint calls models, so a full worker refuses it at once (503 with
    ``retry-after``, before any Redis or upstream call) and counts it in flight until its
    response is over (a stream, until it ends). Errors are rendered in ``dialect``'s envelope.
    ``request_id_header``: a header of the dialect's own that also carries the request id on
    every response (``x-request-id`` always does)."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, **kwargs: str) -> HttpResponseBase:
        exchange = Exchange(
            request_id=new_request_id(),
            client_request_id=client_request_id(request.headers.get("x-request-id")),
        )
        if request_id_header:
            exchange.headers[request_id_header] = exchange.public_id
        gate = get_runtime().gate() if shed else None
        refusal = gate.enter() if gate is not None else None
        if refusal is not None:
            observe_shed(refusal)
            overloaded: AdmissionError = Overloaded(
                "The gateway is overloaded; please retry shortly.", headers={"retry-after": "1"}
            )
            shed_response = dialect.render_error(overloaded)
            return _respond(
                request, exchange, shed_response, error_type=overloaded.error_type, dialect=dialect
            )
        try:
            response, error_type = await _run(view, request, exchange, kwargs, dialect=dialect)
        except BaseException:
            if gate is not None:
                gate.leave()
            raise
        if gate is not None:
            _leave_when_closed(response, gate)
        return _respond(request, exchange, response, error_type=error_type, dialect=dialect)

    return csrf_exempt(wrapper)


def model_endpoint(view: ApiView, *, dialect: Dialect = OPENAI_CHAT, request_id_header: str = "") -> ApiView:
    """An endpoint that calls models: ``api_endpoint`` with load shedding."""
    return api_endpoint(view, shed=True, dialect=dialect, request_id_header=request_id_header)


async def _run(
    view: ApiView, request: HttpRequest, exchange: Exchange, kwargs: dict[str, str], *, dialect: Dialect
) -> tuple[HttpResponseBase, str]:
    """The view's response, or the error it raised rendered (``error_type`` for the log)."""
    try:
        return await view(request, exchange, **kwargs), ""
    except (RequestError, AdmissionError, UpstreamError) as exc:
        return dialect.render_error(exc), exc.error_type
    except Exception:
        logger.exception("unhandled error on %s (request id %s)", request.path, exchange.request_id)
        return dialect.render_error(InternalError(exchange.public_id)), "server_error"


def _leave_when_closed(response: HttpResponseBase, gate: LoadGate) -> None:
    if isinstance(response, StreamingHttpResponse):
        # Django calls a response's resource closers once it is over, sent or not.
        response._resource_closers.append(gate.leave)  # type: ignore[attr-defined]
    else:
        gate.leave()


def _respond(
    request: HttpRequest, exchange: Exchange, response: HttpResponseBase, *, error_type: str, dialect: Dialect
) -> HttpResponseBase:
    overhead_ms = exchange.overhead_ms()  # one reading for the log line and the header
    if not exchange.tracked:  # refused before admission: its one end is here
        outcome = Outcome(status=response.status_code, error_type=error_type)
        finish(exchange, outcome, request=None, path=request.path, overhead_ms=overhead_ms)
    try:
        _decorate(response, exchange, overhead_ms=overhead_ms)
    except Exception:
        logger.exception("response of %s could not be completed", exchange.request_id)
        response.close()  # a streamed body that will not be sent finishes its request
        response = dialect.render_error(InternalError(exchange.public_id))
        response["x-request-id"] = exchange.public_id
    observe_response(
        tracked=exchange.tracked,
        model=exchange.model,
        status=response.status_code,
        endpoint=endpoint_name(request),
    )
    return response


@functools.cache
def _route_name(route: str) -> str:
    parts = route.removeprefix("v1/").split("/")
    return ".".join(part for part in parts if part and not part.startswith("<"))


def endpoint_name(request: HttpRequest) -> str:
    """The metrics label of the request's route: ``v1/chat/completions`` is ``chat.completions``,
    ``v1/responses/<id>`` is ``responses``; a path no route names (an unknown ``/v1`` path) is
    ``""``. A usage event's own ``endpoint`` is the same name for the routes that call models."""
    match = request.resolver_match
    route = match.route if match is not None else ""
    return "" if not route or route.startswith("^") else _route_name(route)


def _decorate(response: HttpResponseBase, exchange: Exchange, *, overhead_ms: float) -> None:
    for name, value in exchange.headers.items():
        response[name] = value
    response["x-request-id"] = exchange.public_id
    response["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
