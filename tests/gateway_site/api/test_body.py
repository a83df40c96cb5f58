"""Request bodies read on demand (gateway_site.api.body): the ASGI ``receive`` here is a queue
of the messages a server would send; what was taken from it is what the body reader read."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping

import pytest
from django.core.exceptions import RequestAborted
from django.test import RequestFactory

from gateway_site.api.body import (
    BodyStream,
    LengthRequired,
    StreamedASGIRequest,
    UnsupportedMediaType,
    announces_body,
    request_body,
)
from gateway_site.api.errors import PayloadTooLarge


class Server:
    """The server's side of ``receive``: messages queued, and how many the application took."""

    def __init__(self, *messages: Mapping[str, object]) -> None:
        self.queue: asyncio.Queue[Mapping[str, object]] = asyncio.Queue()
        self.taken = 0
        for message in messages:
            self.queue.put_nowait(message)

    async def receive(self) -> Mapping[str, object]:
        message = await self.queue.get()
        self.taken += 1
        return message


def chunk(body: bytes, *, more: bool = True) -> dict[str, object]:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT = {"type": "http.disconnect"}


def streamed_request(server: Server, **headers: str) -> StreamedASGIRequest:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    request = StreamedASGIRequest(scope, io.BytesIO())
    request.body_stream = BodyStream(server.receive)
    return request


async def test_the_body_is_read_whole_once():
    server = Server(chunk(b'{"a":'), chunk(b"1"), chunk(b"}", more=False))
    stream = BodyStream(server.receive)
    assert await stream.read(limit=100) == b'{"a":1}'
    assert await stream.read(limit=100) == b'{"a":1}'
    assert (stream.content, server.taken) == (b'{"a":1}', 3)


async def test_reading_stops_at_the_message_that_passes_the_limit():
    server = Server(chunk(b"x" * 60), chunk(b"x" * 60), chunk(b"x" * 60), chunk(b"", more=False))
    stream = BodyStream(server.receive)
    with pytest.raises(PayloadTooLarge) as refused:
        await stream.read(limit=100)
    assert (refused.value.status, refused.value.message) == (
        413,
        "The request body exceeds the limit of 100 bytes.",
    )
    assert (server.taken, server.queue.qsize()) == (2, 2)


async def test_a_disconnect_while_reading_aborts_and_wakes_the_watcher():
    server = Server(chunk(b"x"), DISCONNECT)
    stream = BodyStream(server.receive)
    with pytest.raises(RequestAborted):
        await stream.read(limit=100)
    with pytest.raises(RequestAborted):
        await stream.disconnected()
    assert server.taken == 2


async def test_the_watcher_listens_only_after_the_body_was_read_whole():
    server = Server(chunk(b"{}", more=False))
    stream = BodyStream(server.receive)
    watcher = asyncio.ensure_future(stream.disconnected())
    for _ in range(5):
        await asyncio.sleep(0)
    assert (watcher.done(), server.taken) == (False, 0)  # the body is the reader's to take
    assert await stream.read(limit=10) == b"{}"
    server.queue.put_nowait(DISCONNECT)
    with pytest.raises(RequestAborted):
        await watcher
    assert server.taken == 2


async def test_the_watcher_never_reads_a_body_refused_for_its_size():
    server = Server(chunk(b"x" * 20), chunk(b"x" * 20), DISCONNECT)
    stream = BodyStream(server.receive)
    watcher = asyncio.ensure_future(stream.disconnected())
    with pytest.raises(PayloadTooLarge):
        await stream.read(limit=10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert (watcher.done(), server.taken) == (False, 1)
    watcher.cancel()


async def test_request_body_reads_the_stream_once_asked():
    server = Server(chunk(b"{}", more=False))
    request = streamed_request(server, content_length="2")
    assert server.taken == 0
    assert await request_body(request) == b"{}"
    assert request.body == b"{}"


async def test_request_body_refuses_multipart_and_missing_lengths_before_reading():
    server = Server(chunk(b"--zz", more=False))
    multipart = streamed_request(server, content_type="multipart/form-data; boundary=zz", content_length="4")
    with pytest.raises(UnsupportedMediaType) as refused:
        await request_body(multipart)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_media_type")
    with pytest.raises(LengthRequired) as refused_length:
        await request_body(streamed_request(server))
    assert (refused_length.value.status, refused_length.value.code) == (411, "length_required")
    assert server.taken == 0


async def test_a_view_reading_a_body_whose_client_left_waits_to_be_cancelled():
    server = Server(DISCONNECT)
    reading = asyncio.ensure_future(request_body(streamed_request(server, transfer_encoding="chunked")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert (reading.done(), server.taken) == (False, 1)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading


def test_the_body_of_a_request_not_read_yet_is_an_error_not_empty():
    request = streamed_request(Server(), content_length="2")
    with pytest.raises(RuntimeError, match="await request_body"):
        _ = request.body


async def test_a_request_buffered_by_another_handler_is_its_body():
    request = RequestFactory().post("/v1/chat/completions", data=b'{"a":1}', content_type="application/json")
    assert await request_body(request) == b'{"a":1}'


def test_which_headers_announce_a_body():
    assert announces_body({"transfer-encoding": "chunked"})
    assert announces_body({"content-length": "1"})
    assert not announces_body({"content-length": "0"})
    assert not announces_body({})
