"""A fake OpenAI upstream: a real HTTP server on 127.0.0.1 speaking OpenAI's wire format
(docs/providers.md, "openai"), for end-to-end tests of the gateway.

It is a ``FakeServer`` (aiohttp in a background thread with its own event loop, bound to an
ephemeral port), and

* records every request it received (method, path, query, headers, parsed JSON body), so tests
  assert exactly what was sent upstream and how many times;
* counts responses cut short because the client closed the connection (``client_disconnects``);
* answers each request with the next scripted behaviour from a queue, or with the default:
  ``Reply`` (JSON, or SSE when the request says ``stream: true``; delays, stalls, cuts, malformed
  events, an error event, no usage, no ``[DONE]``), ``ErrorReply`` (an error status with OpenAI's
  error body and headers) or ``Drop`` (close the connection without answering);
* echoes the bearer token it received wherever a scripted error says ``{key}`` (``KEY_ECHO``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.embeddings_wire import EmbeddingsReply, openai_embeddings
from tests.fakes.server import FakeServer, RecordedRequest, echo_key, echoed

CREATED = 1741570283
COMPLETION_ID = "chatcmpl-fake0001"
FINGERPRINT = "fp_fake"


@dataclass(frozen=True)
class FakeUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call in the answer. Streamed, ``arguments`` is sent in ``fragments`` (which must
    concatenate to it); by default in three pieces."""

    id: str
    name: str
    arguments: str
    fragments: tuple[str, ...] | None = None

    def pieces(self) -> tuple[str, ...]:
        if self.fragments is not None:
            assert "".join(self.fragments) == self.arguments
            return self.fragments
        third = max(1, len(self.arguments) // 3)
        a = self.arguments
        return tuple(p for p in (a[:third], a[third : 2 * third], a[2 * third :]) if p)

    def message_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


FailureKind = Literal["reset", "close", "malformed", "eof", "error"]


@dataclass(frozen=True)
class Reply:
    """A 200 answer: a JSON ``chat.completion``, or SSE ``chat.completion.chunk`` events when
    the request has ``stream: true``.

    Streamed, the events are: a role chunk, one chunk per item of ``chunks`` (default: the words
    of ``content``), the tool-call deltas, the finish chunk, the usage chunk (``choices: []``) when
    the request asked for usage (override with ``stream_usage``) and ``data: [DONE]``.

    Timing: ``delay`` before the response headers; ``first_chunk_delay`` before the first content
    or tool-call event, ``chunk_delay`` before each later one; after ``stall_after`` such events
    the stream stalls for ``stall_seconds``. Failures: after ``fail_after`` content or tool-call
    events the stream ends with ``failure``: "reset" (TCP RST), "close" (connection closed inside
    the chunked body), "malformed" (a ``data:`` line that is not JSON, then the stream goes on),
    "eof" (a clean end of the body without finish chunk, usage or ``[DONE]``) or "error" (``error``
    as an in-stream error event ``data: {"error": ...}``, then the end of the body).
    ``done=False`` ends an otherwise complete stream without ``[DONE]``."""

    content: str | None = "Hello!"
    chunks: tuple[str, ...] | None = None
    tool_calls: tuple[FakeToolCall, ...] = ()
    usage: FakeUsage | None = FakeUsage(19, 3)
    finish_reason: str | None = None
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    first_chunk_delay: float = 0.0
    chunk_delay: float = 0.0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    stream_usage: bool | None = None
    done: bool = True
    fail_after: int | None = None
    failure: FailureKind = "reset"
    error: dict[str, Any] = field(
        default_factory=lambda: {"message": "overloaded", "type": "server_error", "param": None, "code": None}
    )

    def content_pieces(self) -> tuple[str, ...]:
        if self.chunks is not None:
            return self.chunks
        if not self.content:
            return ()
        words = self.content.split(" ")
        return tuple(w if i == 0 else " " + w for i, w in enumerate(words))

    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class ErrorReply:
    """An error status with OpenAI's error object (``message``, ``type``, ``param``, ``code``)
    and the given headers."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Drop:
    """Reset the connection without sending a status line."""

    delay: float = 0.0


Behaviour = Reply | ErrorReply | Drop


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class FakeOpenAIUpstream(FakeServer[Behaviour]):
    name = "openai"
    cancel_on_disconnect = True  # counts ``client_disconnects``

    def __init__(self) -> None:
        super().__init__(Reply())
        self.embeddings_reply: EmbeddingsReply | ErrorReply = EmbeddingsReply()  # how /v1/embeddings answers
        self._disconnects = 0

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    @property
    def client_disconnects(self) -> int:
        """Responses cut short because the client closed the connection."""
        with self._lock:
            return self._disconnects

    def _count_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        body, route = recorded.body, (recorded.method, recorded.path)
        if route == ("POST", "/v1/embeddings") and isinstance(body, dict):
            if isinstance(self.embeddings_reply, ErrorReply):
                return _error(self.embeddings_reply, _bearer(recorded))
            return web.json_response(
                openai_embeddings(body, self.embeddings_reply, model=str(body.get("model")))
            )
        if route != ("POST", "/v1/chat/completions"):
            return web.json_response(
                ErrorReply(404, f"Unknown endpoint {request.method} {request.path}").body(), status=404
            )
        behaviour = self.next_behaviour()
        try:
            return await self._answer(request, behaviour, body if isinstance(body, dict) else {}, recorded)
        except asyncio.CancelledError:
            self._count_disconnect()
            raise
        except ConnectionError:
            self._count_disconnect()
            return web.Response(status=499)

    def invalid(self, message: str) -> web.StreamResponse:
        return web.json_response(ErrorReply(400, message).body(), status=400)

    async def _answer(
        self, request: web.Request, behaviour: Behaviour, body: dict[str, Any], recorded: RecordedRequest
    ) -> web.StreamResponse:
        await asyncio.sleep(behaviour.delay)
        if isinstance(behaviour, Drop):
            _reset(request)
            return web.Response(status=499)
        if isinstance(behaviour, ErrorReply):
            return _error(behaviour, _bearer(recorded))
        model = behaviour.model or str(body.get("model", ""))
        if body.get("stream") is True:
            behaviour = echoed(behaviour, _bearer(recorded), "error")
            return await self._stream(request, behaviour, body, model)
        return web.json_response(_completion(behaviour, model), headers=behaviour.headers)

    async def _stream(
        self, request: web.Request, reply: Reply, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        options = body.get("stream_options")
        asked = isinstance(options, dict) and options.get("include_usage") is True
        with_usage = asked if reply.stream_usage is None else reply.stream_usage
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **reply.headers,
            }
        )
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": COMPLETION_ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if with_usage:
                payload["usage"] = None
            return _sse(payload)

        await response.write(
            chunk({"role": "assistant", "content": "" if reply.content is not None else None})
        )
        sent = 0
        for event in _body_events(reply):
            if reply.fail_after is not None and sent == reply.fail_after:
                return await _fail(request, response, reply)
            if reply.stall_after is not None and sent == reply.stall_after:
                await asyncio.sleep(reply.stall_seconds)
            await asyncio.sleep(reply.first_chunk_delay if sent == 0 else reply.chunk_delay)
            await response.write(chunk(event))
            sent += 1
        if reply.fail_after is not None and sent == reply.fail_after:
            return await _fail(request, response, reply)
        await response.write(chunk({}, reply.finish()))
        if with_usage and reply.usage is not None:
            usage_chunk = {
                "id": COMPLETION_ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [],
                "usage": reply.usage.wire(),
            }
            await response.write(_sse(usage_chunk))
        if reply.done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _body_events(reply: Reply) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"content": piece} for piece in reply.content_pieces()]
    for index, call in enumerate(reply.tool_calls):
        events.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        events.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]} for piece in call.pieces()
        )
    return events


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [call.message_wire() for call in reply.tool_calls]
    completion: dict[str, Any] = {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish()}],
        "system_fingerprint": FINGERPRINT,
    }
    if reply.usage is not None:
        completion["usage"] = reply.usage.wire()
    return completion


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _fail(request: web.Request, response: web.StreamResponse, reply: Reply) -> web.StreamResponse:
    failure = reply.failure
    if failure == "error":
        await response.write(_sse({"error": reply.error}))
        await response.write_eof()
    elif failure == "malformed":
        await response.write(b'data: {"id": "chatcmpl-fake0001", "choices": [\n\n')
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    elif failure == "eof":
        await response.write_eof()
    else:
        # Let what was written reach the client's socket buffer first: on Linux an RST can make
        # the peer drop data it has received but not yet read.
        await asyncio.sleep(0.2)
        if failure == "reset":
            _reset(request)
        elif request.transport is not None:
            request.transport.close()
    return response


def _bearer(recorded: RecordedRequest) -> str:
    """The credential the request presented (its bearer token)."""
    return recorded.headers.get("authorization", "").removeprefix("Bearer ")


def _error(reply: ErrorReply, key: str) -> web.Response:
    """The scripted error, ``{key}`` in its body and headers replaced by ``key``."""
    return web.json_response(
        echo_key(reply.body(), key), status=reply.status, headers=echo_key(reply.headers, key)
    )
