"""A fake Azure OpenAI resource (docs/providers.md, "azure") on 127.0.0.1: deployment URLs
(``/openai/deployments/{name}/chat/completions`` and ``/embeddings``), a required
``api-version`` query, the ``api-key`` header (401 in Azure's shape when wrong, and a request
carrying ``Authorization`` instead is invalid). Answers are OpenAI's plus Azure's content-filter
annotations; streams start with a filter-only chunk, as Azure's do. A scripted error's ``{key}``
is replaced by the key the request presented (``KEY_ECHO``); a ``Reply`` with ``failure="error"``
ends its stream with its ``error`` as an in-stream error event after ``fail_after`` deltas."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.embeddings_wire import EmbeddingsReply, openai_embeddings
from tests.fakes.openai_upstream import COMPLETION_ID, CREATED, Reply, _body_events, _completion
from tests.fakes.server import FakeServer, RecordedRequest, echo_key, echoed, require

_SAFE = {"filtered": False, "severity": "safe"}
CHOICE_FILTER = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {**CHOICE_FILTER, "jailbreak": {"filtered": False, "detected": False}},
    }
]


@dataclass(frozen=True)
class AzureError:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def content_filter_error() -> AzureError:
    inner = {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
    }
    return AzureError(
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
                "content management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": inner,
            }
        },
    )


Behaviour = Reply | AzureError


class FakeAzureUpstream(FakeServer[Behaviour]):
    name = "azure"

    def __init__(self, *, api_key: str = "azure-fake-key", api_version: str = "2024-10-21") -> None:
        super().__init__(Reply())
        self.api_key = api_key
        self.api_version = api_version
        self.embeddings_reply: EmbeddingsReply | AzureError = EmbeddingsReply()  # how /embeddings answers

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        parts = recorded.path.split("/")
        operation = "/".join(parts[4:])
        require(
            recorded.method == "POST"
            and parts[1:3] == ["openai", "deployments"]
            and operation in ("chat/completions", "embeddings"),
            f"no route {recorded.path}",
        )
        if recorded.headers.get("api-key") != self.api_key:
            return web.json_response(
                {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}},
                status=401,
            )
        require("authorization" not in recorded.headers, "send api-key or Authorization, not both")
        require(
            recorded.query.get("api-version") == self.api_version, "api-version query missing or unsupported"
        )
        body = recorded.body
        require(isinstance(body, dict), "body must be a JSON object")
        if operation == "embeddings":
            if isinstance(self.embeddings_reply, AzureError):
                return self._error(self.embeddings_reply)
            return web.json_response(
                openai_embeddings(body, self.embeddings_reply, model="text-embedding-3-small")
            )
        behaviour = self.next_behaviour()
        if isinstance(behaviour, AzureError):
            return self._error(behaviour)
        require(isinstance(body.get("messages"), list) and body["messages"], "messages is required")
        assert isinstance(behaviour, Reply)
        model = behaviour.model or "gpt-4o-2024-11-20"  # Azure answers with the underlying model
        if body.get("stream") is True:
            behaviour = echoed(behaviour, self.api_key, "error")
            return await _stream(request, behaviour, body, model)
        completion = _completion(behaviour, model)
        completion["prompt_filter_results"] = PROMPT_FILTER
        completion["choices"][0]["content_filter_results"] = CHOICE_FILTER
        return web.json_response(completion)

    def _error(self, error: AzureError) -> web.Response:
        body, headers = echo_key(error.body, self.api_key), echo_key(error.headers, self.api_key)
        return web.json_response(body, status=error.status, headers=headers)

    def invalid(self, message: str) -> web.StreamResponse:
        return web.json_response(
            {"error": {"code": "BadRequest", "message": message, "param": None, "type": None}}, status=400
        )


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _stream(request: web.Request, reply: Reply, body: dict[str, Any], model: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(
        _sse(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": PROMPT_FILTER,
            }
        )
    )
    base = {"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": CREATED, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {
            "content_filter_results": CHOICE_FILTER,
            "delta": delta,
            "finish_reason": finish,
            "index": 0,
            "logprobs": None,
        }
        return _sse({**base, "choices": [choice]})

    await response.write(chunk({"role": "assistant", "content": ""}))
    for sent, event in enumerate(_body_events(reply)):
        if reply.failure == "error" and sent == reply.fail_after:
            await response.write(_sse({"error": reply.error}))
            await response.write_eof()
            return response
        await response.write(chunk(event))
    await response.write(chunk({}, reply.finish()))
    options = body.get("stream_options") or {}
    if options.get("include_usage") and reply.usage is not None:
        await response.write(_sse({**base, "choices": [], "usage": reply.usage.wire()}))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
