"""Google's Gemini API (PROVIDERS.md §4): ``models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, camelCase out, both spellings in.

Choices: images must be base64 data URLs (the gateway does not fetch URLs on a client's
behalf); ``n`` becomes ``candidateCount``; ``response_format`` json_object / json_schema become
``responseMimeType`` / ``responseJsonSchema``; ``logprobs`` is refused; ``user`` is dropped.
Thought signatures ride in the tool-call ids (``gemini_wire``)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from urllib.parse import quote

import orjson

from providers.adapters import chat_request as req
from providers.adapters.base import JsonObject, UpstreamCall, post
from providers.adapters.chunks import Choice, completion
from providers.adapters.error_policy import retry_headers, vendor_error
from providers.adapters.gemini_stream import GeminiStreamTranslator
from providers.adapters.gemini_wire import (
    IdFactory,
    calls_of,
    field,
    finish_reason,
    parts_of,
    random_id,
    signature_of,
    text_of,
    usage_from,
)
from providers.adapters.translated_stream import SSEFraming, TranslatedStream
from providers.adapters.vendor_json import json_headers, json_object, parse_or_none
from providers.errors import UnsupportedRequest, UpstreamError, UpstreamProtocolError
from providers.types import Completion, DeploymentConfig

PROVIDER = "gemini"


def model_url(deployment: DeploymentConfig, method: str) -> str:
    provider = deployment.provider
    model = quote(deployment.upstream_model.removeprefix("models/"), safe="")
    return f"{provider.base_url}/{provider.api_version}/models/{model}:{method}"


def headers_for(deployment: DeploymentConfig, *, stream: bool = False) -> dict[str, str]:
    return json_headers(stream=stream, key_header="x-goog-api-key", api_key=deployment.provider.api_key)


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    req.refuse_logprobs(body, provider=PROVIDER)
    payload: JsonObject = {"contents": contents(body)}
    system = [{"text": text} for text in req.system_texts(body) if text]
    if system:
        payload["systemInstruction"] = {"parts": system}
    payload.update(_tools(body))
    config = generation_config(body)
    if config:
        payload["generationConfig"] = config
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return model_url(deployment, method), headers_for(deployment, stream=stream), orjson.dumps(payload)


def generation_config(body: JsonObject) -> JsonObject:
    config: JsonObject = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = req.number(body, source)
        if value is not None:
            config[target] = value
    limit = req.max_output_tokens(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = req.stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
    for source, target in (("n", "candidateCount"), ("seed", "seed")):
        whole = body.get(source)
        if isinstance(whole, int) and not isinstance(whole, bool):
            config[target] = whole
    kind, spec = req.response_format(body)
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if spec is not None:
        config["responseJsonSchema"] = spec["schema"]
    return config


def _tools(body: JsonObject) -> JsonObject:
    tools = req.function_tools(body, provider=PROVIDER)
    if not tools:
        return {}
    declarations = []
    for tool in tools:
        declaration: JsonObject = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        if tool.parameters:
            declaration["parametersJsonSchema"] = tool.parameters
        declarations.append(declaration)
    out: JsonObject = {"tools": [{"functionDeclarations": declarations}]}
    choice = req.tool_choice(body)
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if choice in modes:
        out["toolConfig"] = {"functionCallingConfig": {"mode": modes[choice]}}
    elif choice is not None:
        name = choice.removeprefix("function:")
        out["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return out


def contents(body: JsonObject) -> list[JsonObject]:
    """User and model turns; tool results as ``functionResponse`` parts of a user turn (the
    function's name found through the earlier assistant tool call); same-role neighbours merged."""
    names: dict[str, str] = {}
    return req.turns(body, lambda message: _turn(message, names), blocks_key="parts")


def _turn(message: JsonObject, names: dict[str, str]) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    content = message.get("content")
    if role == "user":
        return "user", [_part(p) for p in req.parts(content, provider=PROVIDER) if p != ""]
    if role == "assistant":
        text = req.text_of(content)
        parts: list[JsonObject] = [{"text": text}] if text else []
        for call in req.tool_calls(message):
            names[call.id] = call.name
            part: JsonObject = {"functionCall": {"name": call.name, "args": call.arguments}}
            signature = signature_of(call.id)
            if signature:
                part["thoughtSignature"] = signature
            parts.append(part)
        return "model", parts
    if role == "tool":
        call_id = str(message.get("tool_call_id", ""))
        response = {"name": names.get(call_id, ""), "response": _tool_response(req.text_of(content))}
        return "user", [{"functionResponse": response}]
    raise UnsupportedRequest(f"Messages with role '{role}' are not supported by the gemini provider.")


def _tool_response(text: str) -> JsonObject:
    """Gemini needs an object: the result itself when it is a JSON object, else ``{"result": ...}``."""
    parsed = parse_or_none(text)
    return parsed if isinstance(parsed, dict) else {"result": text}


def _part(part: str | req.Image) -> JsonObject:
    if isinstance(part, str):
        return {"text": part}
    if not part.inline:
        raise UnsupportedRequest(
            "The gemini provider takes images as base64 data URLs (data:image/png;base64,...); "
            "the gateway does not fetch image URLs.",
            param="messages.content.image_url",
        )
    return {"inlineData": {"mimeType": part.mime, "data": part.data}}


def from_upstream(content: bytes, *, created: int, model: str, new_id: IdFactory = random_id) -> Completion:
    parsed = json_object(content)
    candidates = field(parsed, "candidates")
    choices = [
        _choice(c, i, new_id) for i, c in enumerate(candidates if isinstance(candidates, list) else [])
    ]
    if not choices:
        if field(field(parsed, "promptFeedback"), "blockReason") is None:
            raise UpstreamProtocolError("The upstream provider sent a response without candidates.")
        choices = [Choice(content=None, finish_reason="content_filter")]
    return completion(
        id=str(field(parsed, "responseId") or f"chatcmpl-{new_id()}"),
        created=created,
        model=str(field(parsed, "modelVersion") or model),
        choices=choices,
        usage=usage_from(field(parsed, "usageMetadata")),
    )


def _choice(candidate: object, position: int, new_id: IdFactory) -> Choice:
    parts = parts_of(candidate)
    calls = tuple(calls_of(parts, new_id))
    text = text_of(parts)
    index = field(candidate, "index")
    return Choice(
        content=text if text or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(field(candidate, "finishReason"), called=bool(calls)),
        index=index if isinstance(index, int) else position,
    )


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """Google RPC errors: the message and RPC status (as ``code``) are kept; a ``RetryInfo``
    delay becomes ``retry-after``; an invalid API key (a 400 with reason API_KEY_INVALID) is
    an upstream configuration error like a 401."""
    error = field(parse_or_none(content), "error")
    message = str(field(error, "message") or "")
    details = field(error, "details")
    details = details if isinstance(details, list) else []
    retry = retry_headers(headers)
    for detail in details:
        seconds = _retry_seconds(field(detail, "retryDelay"))
        if seconds is not None and "retry-after" not in retry:
            retry["retry-after"] = seconds
    if status == 400 and any(field(d, "reason") == "API_KEY_INVALID" for d in details):
        status = 401
    rpc_status = field(error, "status")
    code = str(rpc_status) if isinstance(rpc_status, str) else None
    return vendor_error(status, message, provider=deployment.provider, headers=retry, code=code)


def _retry_seconds(delay: object) -> str | None:
    """``RetryInfo.retryDelay`` ("47s", "0.5s") as whole seconds, rounded up."""
    if not isinstance(delay, str) or not delay.endswith("s"):
        return None
    try:
        return str(max(1, math.ceil(float(delay[:-1]))))
    except ValueError:
        return None


class GeminiAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content, created=int(time.time()), model=call.deployment.upstream_model)

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = GeminiStreamTranslator(
            provider=provider, created=int(time.time()), model=call.deployment.upstream_model
        )
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=SSEFraming()
        )
