"""Relaying an upstream stream to the client as Server-Sent Events, chunk by chunk.

Each event is written in the client's dialect (a ``StreamEncoder``); a failure after the first
byte ends the stream with the dialect's error event (its fields redacted:
``responses.relayed_error_payload``), never a clean close; a client disconnect closes the
upstream connection. Whatever happens, the request is finished (``settle.finish``) when the
relay ends. A ``StreamCapture`` (the response cache) sees every chunk and hears when the stream
ended normally. ``replay_response`` streams chunks that are already known (a cached answer)
the same way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Protocol

import orjson
from django.http import StreamingHttpResponse

from gateway_site.api.dialects.base import StreamEncoder
from gateway_site.api.outcome import Outcome, StreamProgress, disconnected
from gateway_site.api.responses import internal_error_object, relayed_error_object, relayed_error_payload
from gateway_site.api.settle import AdmittedRequest, Settling, finish
from gateway_site.observability.tracing import traced_stream
from gateway_site.runtime.process import get_runtime
from providers.errors import UpstreamError
from providers.translation.upstream import UpstreamStream
from providers.types import StreamEvent, Usage

logger = logging.getLogger("gateway.api")


class StreamCapture(Protocol):
    def feed(self, payload: bytes) -> None: ...

    def complete(self, usage: Usage | None) -> None:
        """The upstream stream ended normally (not cut short, no error event), with ``usage``."""


async def relay(
    stream: UpstreamStream,
    request: AdmittedRequest,
    progress: StreamProgress,
    *,
    encoder: StreamEncoder,
    capture: StreamCapture | None = None,
) -> AsyncIterator[bytes]:
    """The SSE bytes of ``stream`` in the client's dialect (``encoder``); ``progress`` follows
    it, and when the relay ends (done, failed, or the client gone) the request is finished with
    the outcome it describes."""
    ended = False
    events = stream.events()
    try:
        while True:
            waited = time.perf_counter()
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            finally:
                request.route_plan.upstream_seconds += time.perf_counter() - waited
            if event.usage is not None:
                progress.usage = event.usage
            if event.text:
                progress.on_text(event.text)
            if event.error and event.payload is not None:
                progress.fail(status=502, error_type="upstream_error")
                ended = True
                yield encoder.error(relayed_error_payload(event.payload))
                return
            if capture is not None and event.payload is not None:
                capture.feed(event.payload)
            encoded = encoder.event(event)
            if encoded:
                yield encoded
        ended = True
        if capture is not None:
            capture.complete(progress.usage)
        yield await encoder.done(progress.usage)
    except UpstreamError as exc:
        progress.fail(status=exc.status, error_type=exc.error_type)
        ended = True
        yield encoder.error(orjson.dumps(relayed_error_object(exc)))
    except asyncio.CancelledError:
        progress.disconnect()
        raise
    except Exception:
        # A gateway bug mid-stream: logged once; the client still gets a terminal error event.
        logger.exception("stream relay failed (request id %s)", request.exchange.request_id)
        progress.fail(status=500, error_type="server_error")
        ended = True
        yield encoder.error(orjson.dumps(internal_error_object(request.exchange.public_id)))
    finally:
        if not ended and not progress.client_disconnected:
            progress.disconnect()  # closed by the server after the client went away
        try:
            await stream.aclose()
        finally:
            finish(request.exchange, progress.outcome(), request=request)


def streaming_response(
    stream: UpstreamStream,
    settling: Settling,
    *,
    encoder: StreamEncoder,
    capture: StreamCapture | None = None,
    spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
) -> StreamingHttpResponse:
    """The SSE response relaying ``stream``; it takes the request over from ``settling``.
    ``spawn`` runs the upstream stream's closing if the response is abandoned unstarted
    (default: the runtime's background tasks)."""
    request, progress = settling.request, StreamProgress()
    relayed = relay(stream, request, progress, encoder=encoder, capture=capture)
    chunks = traced_stream(relayed, progress.stream_end)
    response = _sse_response(_Body(chunks, request=request, stream=stream, spawn=spawn))
    settling.hand_off()
    return response


class _Body:
    """The SSE body: the chunks, and ``close()``, which Django calls when the response is
    closed. A client that went away after the view returned but before the first chunk was
    sent leaves the generator unstarted, so its ``finally`` never runs: then the upstream
    stream is closed here and the request finished (status 499). After a relay that ran,
    the request has finished and ``close()`` does nothing."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        request: AdmittedRequest,
        stream: UpstreamStream | None,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    ) -> None:
        self._chunks, self._request, self._stream, self._spawn = chunks, request, stream, spawn

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._request.finished:
            return
        if self._stream is not None:
            (self._spawn or get_runtime().spawn)(self._stream.aclose())
        finish(self._request.exchange, disconnected(), request=self._request)


async def replay(
    payloads: Sequence[bytes],
    request: AdmittedRequest,
    progress: StreamProgress,
    *,
    encoder: StreamEncoder,
    cached: Outcome,
    text: str,
) -> AsyncIterator[bytes]:
    """Stream known chunk payloads and the terminal event; the request finishes when the replay
    ends, with the cached answer's outcome (or a disconnect)."""
    ended = False
    try:
        for index, payload in enumerate(payloads):
            if index == 1 and text:
                progress.on_text(text)
            yield encoder.event(StreamEvent(payload=payload))
        ended = True
        yield await encoder.done(cached.usage)
    finally:
        if not ended:
            progress.disconnect()  # cancelled, or closed after the client went away
        outcome = replace(
            cached,
            status=progress.status,
            error_type=progress.error_type,
            client_disconnected=progress.client_disconnected,
            first_token_at=progress.first_token_at,
        )
        finish(request.exchange, outcome, request=request)


def replay_response(
    payloads: Sequence[bytes], settling: Settling, *, encoder: StreamEncoder, cached: Outcome, text: str
) -> StreamingHttpResponse:
    """A cached answer replayed as SSE; it takes the request over from ``settling``."""
    request, progress = settling.request, StreamProgress()
    replayed = replay(payloads, request, progress, encoder=encoder, cached=cached, text=text)
    chunks = traced_stream(replayed, progress.stream_end)
    response = _sse_response(_Body(chunks, request=request, stream=None))
    settling.hand_off()
    return response


def _sse_response(chunks: _Body) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
