"""An OpenAI chat request as a Gemini ``generateContent`` / ``streamGenerateContent?alt=sse``
request, camelCase out.

Choices: images must be base64 data URLs (the gateway does not fetch URLs on a client's
behalf); ``n`` becomes ``candidateCount``; ``response_format`` json_object / json_schema become
``responseMimeType`` / ``responseJsonSchema``; ``logprobs`` is refused; ``user`` is dropped."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from providers.errors import UnsupportedRequest
from providers.translation import chat_request as req
from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import json_headers, parse_or_none
from providers.types import DeploymentConfig
from providers.vendors.gemini.thought_signatures import signature_of

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
