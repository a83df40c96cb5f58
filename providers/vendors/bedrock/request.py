"""An OpenAI chat request as a Bedrock ``Converse`` / ``ConverseStream`` request: the model URL, the
``ConverseRequest`` body, signed (``signing``).

Choices: ``n`` > 1, ``logprobs`` and ``response_format`` json_object are refused; json_schema
becomes ``outputConfig.textFormat``; images must be base64 data URLs; ``seed`` and penalties
are dropped; ``user`` becomes ``requestMetadata.user``."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from providers.errors import UnsupportedRequest
from providers.translation import chat_request as req
from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import parse_or_none
from providers.types import DeploymentConfig
from providers.vendors.bedrock.signing import auth_headers

PROVIDER = "bedrock"

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

# The model id is one path segment: "/" (in ARNs) is escaped, the characters a URL path allows
# (":" of "...-v1:0" among them) are not. botocore escapes ":" too, but our transport (aiohttp's
# yarl) unescapes it on the wire, and the SigV4 signature must cover the path as sent.
_PATH_SAFE = ":@!$&'()*+,;="


def model_url(deployment: DeploymentConfig, operation: str) -> str:
    model = quote(deployment.upstream_model, safe=_PATH_SAFE)
    return f"{deployment.provider.base_url}/model/{model}/{operation}"


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    return signed_request(converse_body(body), deployment, stream=stream)


def signed_request(
    payload: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    """``(url, headers, body)`` of a Converse (or ConverseStream) ``payload``, signed."""
    url = model_url(deployment, "converse-stream" if stream else "converse")
    content = orjson.dumps(payload)
    headers = {
        "content-type": "application/json",
        "accept": "application/vnd.amazon.eventstream" if stream else "application/json",
    }
    return url, auth_headers(deployment.provider, url=url, body=content, headers=headers), content


def converse_body(body: JsonObject) -> JsonObject:
    req.refuse_multiple_choices(body, provider=PROVIDER)
    req.refuse_logprobs(body, provider=PROVIDER)
    payload: JsonObject = {"messages": messages(body)}
    system = [{"text": text} for text in req.system_texts(body) if text]
    if system:
        payload["system"] = system
    config = _inference_config(body)
    if config:
        payload["inferenceConfig"] = config
    tools = _tool_config(body)
    if tools:
        payload["toolConfig"] = tools
    output = _output_config(body)
    if output:
        payload["outputConfig"] = output
    user = body.get("user")
    if isinstance(user, str) and user:
        payload["requestMetadata"] = {"user": user}
    return payload


def _inference_config(body: JsonObject) -> JsonObject:
    config: JsonObject = {}
    limit = req.max_output_tokens(body)
    if limit is not None:
        config["maxTokens"] = limit
    for source, target in (("temperature", "temperature"), ("top_p", "topP")):
        value = req.number(body, source)
        if value is not None:
            config[target] = value
    stop = req.stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
    return config


def _tool_config(body: JsonObject) -> JsonObject:
    tools = req.function_tools(body, provider=PROVIDER)
    if not tools:
        return {}
    specs = []
    for tool in tools:
        spec: JsonObject = {
            "name": tool.name,
            "inputSchema": {"json": tool.parameters or {"type": "object", "properties": {}}},
        }
        if tool.description:
            spec["description"] = tool.description
        specs.append({"toolSpec": spec})
    config: JsonObject = {"tools": specs}
    choice = req.tool_choice(body)
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.startswith("function:"):
        config["toolChoice"] = {"tool": {"name": choice.removeprefix("function:")}}
    return config  # "none" has no Converse form: the tools stay, no choice is forced


def _output_config(body: JsonObject) -> JsonObject:
    kind, spec = req.response_format(body)
    if kind == "json_schema" and spec is not None:
        schema: JsonObject = {"schema": orjson.dumps(spec["schema"]).decode()}
        if isinstance(spec.get("name"), str):
            schema["name"] = spec["name"]
        return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
    if kind != "text":
        raise UnsupportedRequest(
            f"response_format '{kind}' is not supported by the bedrock provider; "
            "use json_schema with a schema.",
            param="response_format",
        )
    return {}


def messages(body: JsonObject) -> list[JsonObject]:
    """Converse turns: must alternate, so same-role neighbours (tool results and the user text
    after them included) are merged into one turn."""
    return req.turns(body, _turn, blocks_key="content")


def _turn(message: JsonObject) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    content = message.get("content")
    if role == "user":
        return "user", [_block(p) for p in req.parts(content, provider=PROVIDER) if p != ""]
    if role == "assistant":
        text = req.text_of(content)
        blocks: list[JsonObject] = [{"text": text}] if text else []
        blocks.extend(
            {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}}
            for c in req.tool_calls(message)
        )
        return "assistant", blocks
    if role == "tool":
        result = {
            "toolUseId": str(message.get("tool_call_id", "")),
            "content": _tool_result(req.text_of(content)),
        }
        return "user", [{"toolResult": {**result, "status": "success"}}]
    raise UnsupportedRequest(f"Messages with role '{role}' are not supported by the bedrock provider.")


def _tool_result(text: str) -> list[JsonObject]:
    parsed = parse_or_none(text)
    if isinstance(parsed, dict):
        return [{"json": parsed}]
    return [{"text": text or " "}]  # Converse refuses an empty text block


def _block(part: str | req.Image) -> JsonObject:
    if isinstance(part, str):
        return {"text": part}
    image_format = _IMAGE_FORMATS.get(part.mime)
    if not part.inline or image_format is None:
        raise UnsupportedRequest(
            "The bedrock provider takes images as base64 data URLs of PNG, JPEG, GIF or WebP; "
            "the gateway does not fetch image URLs.",
            param="messages.content.image_url",
        )
    return {"image": {"format": image_format, "source": {"bytes": part.data}}}
