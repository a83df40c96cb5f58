"""Relaying an upstream stream to the client as Server-Sent Events, chunk by chunk.

The usage chunk is dropped unless the client asked for it (``stream_options.include_usage``);
a failure after the first byte ends the stream with an OpenAI error event, never a clean close;
a client disconnect closes the upstream connection. Whatever happens, the tracker emits the
request's one usage event when the relay ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
from django.http import StreamingHttpResponse

from gateway_site.api.exchange import UsageTracker
from gateway_site.api.responses import error_object, internal_error_object
from gateway_site.tracing import traced_stream
from providers.adapters import UpstreamStream
from providers.errors import UpstreamError

_DONE = b"data: [DONE]\n\n"

logger = logging.getLogger("gateway.api")


def sse_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


async def relay(
    stream: UpstreamStream, tracker: UsageTracker, *, include_usage: bool
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
                tracker.attempt.upstream_seconds += time.perf_counter() - waited
            if event.usage is not None:
                tracker.usage = event.usage
            if event.text:
                tracker.on_text(event.text)
            if event.error and event.payload is not None:
                tracker.fail(status=502, error_type="upstream_error")
                ended = True
                yield sse_data(event.payload)
                return
            if event.payload is None or (event.usage_only and not include_usage):
                continue
            yield sse_data(event.payload)
        ended = True
        yield _DONE
    except UpstreamError as exc:
        tracker.fail(status=exc.status, error_type=exc.error_type)
        ended = True
        yield sse_data(orjson.dumps(error_object(exc)))
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
    stream: UpstreamStream, tracker: UsageTracker, *, include_usage: bool
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        traced_stream(relay(stream, tracker, include_usage=include_usage), tracker),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
