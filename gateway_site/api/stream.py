"""Relaying an upstream stream to the client as Server-Sent Events, chunk by chunk.

The usage chunk is dropped unless the client asked for it (``stream_options.include_usage``);
a failure after the first byte ends the stream with an OpenAI error event (its fields redacted:
``responses.relayed_error_payload``), never a clean close;
a client disconnect closes the upstream connection. Whatever happens, the tracker emits the
request's one usage event when the relay ends. A ``StreamCapture`` (the response cache) sees
every chunk and hears when the stream ended normally. ``replay_response`` streams chunks that
are already known (a cached answer) the same way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Protocol

import orjson
from django.http import StreamingHttpResponse

from gateway_site.api.exchange import UsageTracker
from gateway_site.api.responses import internal_error_object, relayed_error_object, relayed_error_payload
from gateway_site.observability.tracing import traced_stream
from gateway_site.runtime.process import get_runtime
from providers.errors import UpstreamError
from providers.translation.upstream import UpstreamStream

_DONE = b"data: [DONE]\n\n"

logger = logging.getLogger("gateway.api")


class StreamCapture(Protocol):
    def feed(self, payload: bytes) -> None: ...

    def complete(self) -> None:
        """The upstream stream ended normally (not cut short, no error event)."""


def sse_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


async def relay(
    stream: UpstreamStream,
    tracker: UsageTracker,
    *,
    include_usage: bool,
    capture: StreamCapture | None = None,
) -> AsyncIterator[bytes]:
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
                tracker.route_plan.upstream_seconds += time.perf_counter() - waited
            if event.usage is not None:
                tracker.usage = event.usage
            if event.text:
                tracker.on_text(event.text)
            if event.error and event.payload is not None:
                tracker.fail(status=502, error_type="upstream_error")
                ended = True
                yield sse_data(relayed_error_payload(event.payload))
                return
            if capture is not None and event.payload is not None:
                capture.feed(event.payload)
            if event.payload is None or (event.usage_only and not include_usage):
                continue
            yield sse_data(event.payload)
        ended = True
        if capture is not None:
            capture.complete()
        yield _DONE
    except UpstreamError as exc:
        tracker.fail(status=exc.status, error_type=exc.error_type)
        ended = True
        yield sse_data(orjson.dumps(relayed_error_object(exc)))
    except asyncio.CancelledError:
        tracker.disconnected()
        raise
    except Exception:
        # A gateway bug mid-stream: logged once; the client still gets a terminal error event.
        logger.exception("stream relay failed (request id %s)", tracker.exchange.request_id)
        tracker.fail(status=500, error_type="server_error")
        ended = True
        yield sse_data(orjson.dumps(internal_error_object(tracker.exchange.public_id)))
    finally:
        if not ended and not tracker.client_disconnected:
            tracker.disconnected()  # closed by the server after the client went away
        try:
            await stream.aclose()
        finally:
            tracker.finish()


def streaming_response(
    stream: UpstreamStream,
    tracker: UsageTracker,
    *,
    include_usage: bool,
    capture: StreamCapture | None = None,
    spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
) -> StreamingHttpResponse:
    """``spawn`` runs the upstream stream's closing if the response is abandoned unstarted
    (default: the runtime's background tasks)."""
    chunks = traced_stream(
        relay(stream, tracker, include_usage=include_usage, capture=capture), tracker.stream_end
    )
    response = _sse_response(_Body(chunks, tracker=tracker, stream=stream, spawn=spawn))
    tracker.hand_off()
    return response


class _Body:
    """The SSE body: the chunks, and ``close()``, which Django calls when the response is
    closed. A client that went away after the view returned but before the first chunk was
    sent leaves the generator unstarted, so its ``finally`` never runs: then the upstream
    stream is closed here and the usage event emitted (status 499). After a relay that ran,
    the tracker has finished and ``close()`` does nothing."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        tracker: UsageTracker,
        stream: UpstreamStream | None,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    ) -> None:
        self._chunks, self._tracker, self._stream, self._spawn = chunks, tracker, stream, spawn

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._tracker.finished:
            return
        self._tracker.disconnected()
        if self._stream is not None:
            (self._spawn or get_runtime().spawn)(self._stream.aclose())
        self._tracker.finish()


async def replay(payloads: Sequence[bytes], tracker: UsageTracker, *, text: str) -> AsyncIterator[bytes]:
    """Stream known chunk payloads and ``[DONE]``; the tracker finishes when the replay ends."""
    ended = False
    try:
        for index, payload in enumerate(payloads):
            if index == 1 and text:
                tracker.on_text(text)
            yield sse_data(payload)
        ended = True
        yield _DONE
    finally:
        if not ended:
            tracker.disconnected()  # cancelled, or closed after the client went away
        tracker.finish()


def replay_response(payloads: Sequence[bytes], tracker: UsageTracker, *, text: str) -> StreamingHttpResponse:
    chunks = traced_stream(replay(payloads, tracker, text=text), tracker.stream_end)
    response = _sse_response(_Body(chunks, tracker=tracker, stream=None))
    tracker.hand_off()
    return response


def _sse_response(chunks: _Body) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
