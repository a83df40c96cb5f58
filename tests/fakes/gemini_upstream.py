"""A fake Gemini API (docs/providers.md, "gemini") on 127.0.0.1:
``/{version}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and
``:batchEmbedContents``. It checks ``x-goog-api-key`` (a wrong key is Gemini's 400
API_KEY_INVALID), validates the body strictly (camelCase keys, roles ``user`` / ``model``, one
data member per part, object ``functionResponse.response``) and, like Gemini 3, refuses a
history whose function call lost the thought signature it was sent with. A scripted error's
``{key}`` is replaced by the key the request presented (``KEY_ECHO``); a reply with
``fail_after`` ends its stream with an error object instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.embeddings_wire import EmbeddingsReply, vector
from tests.fakes.server import FakeServer, RecordedRequest, echoed, require

RESPONSE_ID = "gemFakeResp01"
_PART_KEYS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}


@dataclass(frozen=True)
class GeminiCall:
    name: str
    args: dict[str, Any]
    signature: str | None = None


@dataclass(frozen=True)
class GeminiReply:
    text: str = "Hello from Gemini!"
    calls: tuple[GeminiCall, ...] = ()
    finish: str = "STOP"
    prompt_tokens: int = 11
    output_tokens: int = 5
    thoughts: int = 0
    model_version: str = "gemini-2.5-flash-001"
    fail_after: int | None = None  # streamed: an error object after this many text events
    error_message: str = "Internal error encountered."


@dataclass(frozen=True)
class GeminiError:
    status: int
    rpc_status: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)


Behaviour = GeminiReply | GeminiError | EmbeddingsReply


class FakeGeminiUpstream(FakeServer[Behaviour]):
    name = "gemini"

    def __init__(self, *, api_key: str = "AIza-fake", version: str = "v1beta") -> None:
        super().__init__(GeminiReply())
        self.api_key = api_key
        self.version = version
        self.issued_signatures: dict[str, str] = {}  # function name + args -> signature

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        prefix = f"/{self.version}/models/"
        require(recorded.method == "POST" and recorded.path.startswith(prefix), f"no route {recorded.path}")
        model, _, method = recorded.path.removeprefix(prefix).partition(":")
        if recorded.headers.get("x-goog-api-key") != self.api_key:
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            return _error(
                GeminiError(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details
                )
            )
        behaviour = self.next_behaviour()
        if isinstance(behaviour, GeminiError):
            return _error(echoed(behaviour, self.api_key, "rpc_status", "message", "details"))
        if method == "batchEmbedContents":
            require(isinstance(behaviour, EmbeddingsReply), "the script expected a generate request")
            assert isinstance(behaviour, EmbeddingsReply)
            return web.json_response(_embeddings(recorded.body, model, behaviour))
        require(method in ("generateContent", "streamGenerateContent"), f"unknown method {method}")
        self._validate(recorded.body)
        assert isinstance(behaviour, GeminiReply)
        for call in behaviour.calls:
            if call.signature:
                self.issued_signatures[_call_key(call.name, call.args)] = call.signature
        if method == "streamGenerateContent":
            require(recorded.query.get("alt") == "sse", "streamGenerateContent without alt=sse")
            return await _stream(request, echoed(behaviour, self.api_key, "error_message"))
        return web.json_response(_response(behaviour, behaviour.calls, behaviour.text, finish=True))

    def invalid(self, message: str) -> web.StreamResponse:
        return _error(GeminiError(400, "INVALID_ARGUMENT", message))

    def _validate(self, body: Any) -> None:
        require(isinstance(body, dict), "body must be a JSON object")
        require(
            not set(body) - _TOP_LEVEL, f"Unknown name {sorted(set(body) - _TOP_LEVEL)}: Cannot find field."
        )
        contents = body.get("contents")
        require(isinstance(contents, list) and contents, "contents is not specified")
        for index, content in enumerate(contents):
            require(content.get("role") in ("user", "model"), f"contents[{index}].role: user or model")
            require(
                isinstance(content.get("parts"), list) and content["parts"],
                f"contents[{index}].parts: required",
            )
            for part in content["parts"]:
                self._part(part, f"contents[{index}]")
        for tool in body.get("tools", []):
            for declaration in tool.get("functionDeclarations", []):
                require(
                    set(declaration) <= {"name", "description", "parametersJsonSchema"},
                    "functionDeclarations keys",
                )

    def _part(self, part: dict[str, Any], where: str) -> None:
        data = set(part) & _PART_KEYS
        require(
            len(data) == 1 and not set(part) - _PART_KEYS - {"thoughtSignature"},
            f"{where}: one data member per part",
        )
        if "inlineData" in part:
            require(
                set(part["inlineData"]) == {"mimeType", "data"},
                f"{where}: inlineData needs mimeType and data",
            )
        if "functionResponse" in part:
            require(
                isinstance(part["functionResponse"].get("response"), dict),
                f"{where}: response must be an object",
            )
            require(part["functionResponse"].get("name"), f"{where}: functionResponse.name is required")
        if "functionCall" in part:
            call = part["functionCall"]
            issued = self.issued_signatures.get(_call_key(call.get("name"), call.get("args")))
            require(
                issued is None or part.get("thoughtSignature") == issued,
                f"Function call is missing a thought_signature in functionCall parts. {where}",
            )


def _call_key(name: Any, args: Any) -> str:
    return json.dumps([name, args], sort_keys=True)


def _usage(reply: GeminiReply) -> dict[str, Any]:
    total = reply.prompt_tokens + reply.output_tokens + reply.thoughts
    usage = {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.output_tokens,
        "totalTokenCount": total,
    }
    if reply.thoughts:
        usage["thoughtsTokenCount"] = reply.thoughts
    return usage


def _response(
    reply: GeminiReply, calls: tuple[GeminiCall, ...], text: str, *, finish: bool
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for call in calls:
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.args}}
        if call.signature:
            part["thoughtSignature"] = call.signature
        parts.append(part)
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = reply.finish
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(reply),
        "modelVersion": reply.model_version,
        "responseId": RESPONSE_ID,
    }


async def _stream(request: web.Request, reply: GeminiReply) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    words = reply.text.split(" ") if reply.text else []
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    events = [_response(reply, (), piece, finish=False) for piece in pieces]
    events += [_response(reply, (call,), "", finish=False) for call in reply.calls]
    last = _response(reply, (), "", finish=True)
    last["candidates"][0]["content"]["parts"] = [{"text": ""}]
    events.append(last)
    if reply.fail_after is not None:
        failure = {"error": {"code": 500, "message": reply.error_message, "status": "INTERNAL"}}
        events = [*events[: reply.fail_after], failure]
    for event in events:
        await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
    await response.write_eof()
    return response


def _error(error: GeminiError) -> web.Response:
    body = {
        "error": {
            "code": error.status,
            "message": error.message,
            "status": error.rpc_status,
            "details": error.details,
        }
    }
    return web.json_response(body, status=error.status)


def _embeddings(body: Any, model: str, reply: EmbeddingsReply) -> dict[str, Any]:
    requests = body.get("requests") if isinstance(body, dict) else None
    require(isinstance(requests, list) and requests, "requests is required")
    out = []
    for index, item in enumerate(requests):
        require(item.get("model") == f"models/{model}", "each request's model must be models/{model}")
        parts = item.get("content", {}).get("parts", [])
        require(len(parts) == 1 and isinstance(parts[0].get("text"), str), "content.parts: one text part")
        out.append({"values": vector(index, item.get("outputDimensionality") or reply.dimensions)})
    return {"embeddings": out}
