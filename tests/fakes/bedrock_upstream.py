"""A fake Bedrock runtime (docs/providers.md, "bedrock") on 127.0.0.1: ``/model/{modelId}/converse``,
``/converse-stream`` (binary event stream) and ``/invoke`` (Titan text embeddings).

Every request's SigV4 signature is verified in full with botocore (signing name ``bedrock``,
the fake's region and credentials, the percent-encoded model id in the signed path); a bad one
is AWS's 403. The Converse body is validated strictly: unions with exactly one member, roles
alternating and starting with ``user``, image formats, ``toolResult`` ids answering the previous
``toolUse`` ids, and ``toolConfig`` present whenever the history holds tool blocks. A scripted
error's ``{key}`` is replaced by the secret access key the fake verified the signature with
(``KEY_ECHO``: AWS knows it)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.embeddings_wire import EmbeddingsReply, vector
from tests.fakes.eventstream import event, exception
from tests.fakes.server import FakeServer, Invalid, RecordedRequest, echoed, require

REQUEST_ID = "5d8f3c1e-0000-4a6b-9c1d-fakebedrock01"
_BLOCKS = {"text", "image", "toolUse", "toolResult", "document", "cachePoint", "reasoningContent"}
_TOP_LEVEL = {
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
}  # fmt: skip


def verify_sigv4(
    *,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    access_key: str,
    secret_key: str,
    token: str | None,
) -> str | None:
    """None when the ``Authorization`` header is botocore's SigV4 signature of this request;
    otherwise what is wrong. ``headers`` have lower-case names."""
    authorization = headers.get("authorization", "")
    prefix = f"AWS4-HMAC-SHA256 Credential={access_key}/"
    if not authorization.startswith(prefix):
        return "not a SigV4 Authorization header for this access key"
    fields = dict(
        part.strip().split("=", 1) for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    scope = fields["Credential"].split("/")
    if scope[2:] != [region, "bedrock", "aws4_request"]:
        return f"wrong credential scope {fields['Credential']}"
    signed = fields["SignedHeaders"].split(";")
    if token is not None and headers.get("x-amz-security-token") != token:
        return "missing or wrong X-Amz-Security-Token"
    request = AWSRequest(
        method="POST", url=url, data=body, headers={h: headers[h] for h in signed if h != "host"}
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(access_key, secret_key, token), "bedrock", region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return None if expected == fields["Signature"] else "signature does not match"


@dataclass(frozen=True)
class BedrockReply:
    text: str = "Hello from Bedrock!"
    tool_uses: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (toolUseId, name, input)
    stop_reason: str | None = None
    input_tokens: int = 13
    output_tokens: int = 6
    cache_read: int = 0
    cache_write: int = 0
    reasoning: str = ""  # Claude's reasoning, first, signed with ``signature``
    signature: str = "sig-bedrock-0001"
    exception_after: int | None = None  # streamed: a throttlingException after this many deltas
    exception_message: str = "Too many tokens, please wait before trying again."

    def stop(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")


@dataclass(frozen=True)
class BedrockError:
    status: int
    name: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = BedrockReply | BedrockError | EmbeddingsReply


class FakeBedrockUpstream(FakeServer[Behaviour]):
    name = "bedrock"

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        access_key: str = "AKIDFAKE",
        secret_key: str = "fake-secret",
        token: str | None = None,
    ) -> None:
        super().__init__(BedrockReply())
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        parts = recorded.path.split("/")
        require(
            recorded.method == "POST" and len(parts) == 4 and parts[1] == "model", f"no route {recorded.path}"
        )
        problem = verify_sigv4(
            url=f"{self.base_url}{recorded.path}",
            headers=recorded.headers,
            body=recorded.raw,
            region=self.region,
            access_key=self.access_key,
            secret_key=self.secret_key,
            token=self.token,
        )
        if problem is not None:
            return _error(
                BedrockError(
                    403,
                    "InvalidSignatureException",
                    f"The request signature we calculated does not match ({problem}).",
                )
            )
        behaviour = self.next_behaviour()
        if isinstance(behaviour, BedrockError):
            return _error(echoed(behaviour, self.secret_key, "name", "message", "headers"))
        operation = parts[3]
        if operation == "invoke":
            require(isinstance(behaviour, EmbeddingsReply), "the script expected a converse request")
            assert isinstance(behaviour, EmbeddingsReply)
            return _titan(recorded.body, behaviour)
        require(operation in ("converse", "converse-stream"), f"unknown operation {operation}")
        validate(recorded.body)
        assert isinstance(behaviour, BedrockReply)
        if operation == "converse-stream":
            return await _stream(request, echoed(behaviour, self.secret_key, "exception_message"))
        return web.json_response(_converse(behaviour), headers={"x-amzn-RequestId": REQUEST_ID})

    def invalid(self, message: str) -> web.StreamResponse:
        return _error(BedrockError(400, "ValidationException", message))


def _one(union: Any, allowed: set[str], where: str) -> str:
    require(
        isinstance(union, dict) and len(union) == 1 and set(union) <= allowed,
        f"{where}: exactly one member of {sorted(allowed)}",
    )
    return next(iter(union))


def validate(body: Any) -> None:
    require(isinstance(body, dict) and not set(body) - _TOP_LEVEL, "body: unknown top-level member")
    for item in body.get("system", []):
        kind = _one(item, {"text", "cachePoint"}, "system")
        _block(kind, item[kind], "system")
    _thinking(body)
    messages = body.get("messages")
    require(
        isinstance(messages, list) and messages and messages[0].get("role") == "user",
        "messages must start with user",
    )
    uses: set[str] = set()
    has_tools = False
    for index, message in enumerate(messages):
        if index:
            require(message.get("role") != messages[index - 1].get("role"), "roles must alternate")
        require(message.get("role") in ("user", "assistant") and message.get("content"), f"messages[{index}]")
        results: set[str] = set()
        for block in message["content"]:
            kind = _one(block, _BLOCKS, f"messages[{index}].content")
            _block(kind, block[kind], f"messages[{index}]")
            has_tools |= kind in ("toolUse", "toolResult")
            if kind == "toolResult":
                results.add(block[kind]["toolUseId"])
        require(results <= uses, f"messages[{index}]: toolResult without a matching toolUse")
        uses = {b["toolUse"]["toolUseId"] for b in message["content"] if "toolUse" in b}
    require(not has_tools or "toolConfig" in body, "toolConfig is required when messages contain tool blocks")
    config = body.get("toolConfig")
    if config is not None:
        for tool in config.get("tools", []):
            _one(tool, {"toolSpec", "cachePoint"}, "toolConfig.tools")
        if "toolChoice" in config:
            _one(config["toolChoice"], {"auto", "any", "tool"}, "toolConfig.toolChoice")


def _thinking(body: dict[str, Any]) -> None:
    thinking = body.get("additionalModelRequestFields", {}).get("thinking")
    if thinking is None:
        return
    require(thinking.get("type") in ("enabled", "disabled", "adaptive"), "thinking.type")
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        require(isinstance(budget, int) and budget >= 1024, "thinking.budget_tokens: at least 1024")


def _block(kind: str, value: Any, where: str) -> None:
    if kind == "cachePoint":
        require(value == {"type": "default"}, f"{where}: cachePoint.type: default")
    elif kind == "reasoningContent":
        member = _one(value, {"reasoningText", "redactedContent"}, f"{where}: reasoningContent")
        text = value[member]
        require(
            member == "redactedContent" or (text.get("text") and text.get("signature")),
            f"{where}: reasoningText needs its text and signature",
        )
    elif kind == "document":
        require(
            value.get("format") in ("pdf", "txt", "md", "html", "csv", "doc", "docx", "xls", "xlsx"),
            f"{where}: document format",
        )
        require(value.get("name"), f"{where}: document name")
        _one(value.get("source"), {"bytes", "s3Location", "text", "content"}, f"{where}: document source")
    elif kind == "text":
        require(isinstance(value, str) and value.strip(), f"{where}: text must not be blank")
    elif kind == "image":
        require(value.get("format") in ("png", "jpeg", "gif", "webp"), f"{where}: image format")
        _one(value.get("source"), {"bytes", "s3Location"}, f"{where}: image source")
    elif kind == "toolUse":
        require(
            value.get("toolUseId") and value.get("name") and isinstance(value.get("input"), dict),
            f"{where}: toolUse",
        )
    elif kind == "toolResult":
        for item in value.get("content", []):
            _one(item, {"text", "json", "image", "document"}, f"{where}: toolResult.content")
        require(value.get("status", "success") in ("success", "error"), f"{where}: toolResult.status")


def _usage(reply: BedrockReply) -> dict[str, int]:
    total = reply.input_tokens + reply.output_tokens + reply.cache_read + reply.cache_write
    return {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": total,
        "cacheReadInputTokens": reply.cache_read,
        "cacheWriteInputTokens": reply.cache_write,
    }


def _converse(reply: BedrockReply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append(
            {"reasoningContent": {"reasoningText": {"text": reply.reasoning, "signature": reply.signature}}}
        )
    content += [{"text": reply.text}] if reply.text else []
    content += [{"toolUse": {"toolUseId": i, "name": n, "input": a}} for i, n, a in reply.tool_uses]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": reply.stop(),
        "usage": _usage(reply),
        "metrics": {"latencyMs": 42},
    }


async def _stream(request: web.Request, reply: BedrockReply) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": REQUEST_ID}
    )
    await response.prepare(request)
    frames = [event("messageStart", {"role": "assistant"})]
    deltas = 0
    first = 0
    if reply.reasoning:
        for delta in ({"text": reply.reasoning}, {"signature": reply.signature}):
            frames.append(
                event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": delta}})
            )
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        first = 1
    if reply.text:
        for i, word in enumerate(reply.text.split(" ")):
            frames.append(
                event(
                    "contentBlockDelta",
                    {"contentBlockIndex": first, "delta": {"text": word if i == 0 else " " + word}},
                )
            )
            deltas += 1
            if reply.exception_after == deltas:
                frames.append(exception("throttlingException", reply.exception_message))
                return await _send(request, response, frames)
        frames.append(event("contentBlockStop", {"contentBlockIndex": first}))
    for offset, (use_id, name, arguments) in enumerate(
        reply.tool_uses, start=first + (1 if reply.text else 0)
    ):
        frames.append(
            event(
                "contentBlockStart",
                {"contentBlockIndex": offset, "start": {"toolUse": {"toolUseId": use_id, "name": name}}},
            )
        )
        text = json.dumps(arguments)
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            frames.append(
                event(
                    "contentBlockDelta", {"contentBlockIndex": offset, "delta": {"toolUse": {"input": piece}}}
                )
            )
        frames.append(event("contentBlockStop", {"contentBlockIndex": offset}))
    frames.append(event("messageStop", {"stopReason": reply.stop()}))
    frames.append(event("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 42}}))
    return await _send(request, response, frames)


async def _send(
    request: web.Request, response: web.StreamResponse, frames: list[bytes]
) -> web.StreamResponse:
    for frame in frames:
        await response.write(frame)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def _error(error: BedrockError) -> web.Response:
    headers = {
        "x-amzn-ErrorType": f"{error.name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        **error.headers,
    }
    return web.json_response({"message": error.message}, status=error.status, headers=headers)


def _titan(body: Any, reply: EmbeddingsReply) -> web.Response:
    require(isinstance(body, dict) and isinstance(body.get("inputText"), str), "inputText is required")
    require(not set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}, "unknown Titan field")
    values = vector(0, body.get("dimensions") or reply.dimensions)
    result = {"embedding": values, "inputTextTokenCount": reply.prompt_tokens}
    return web.json_response(result, headers={"x-amzn-RequestId": REQUEST_ID})


__all__ = ["BedrockError", "BedrockReply", "FakeBedrockUpstream", "Invalid", "verify_sigv4"]
