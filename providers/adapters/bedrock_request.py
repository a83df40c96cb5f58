"""An OpenAI chat request as a Bedrock ``ConverseRequest`` body (PROVIDERS.md §5.2-5.3), and the
SigV4 signing of the request with botocore's signer (signing name ``bedrock``)."""

from __future__ import annotations

import orjson

from providers.adapters import chat_request as req
from providers.adapters.base import JsonObject
from providers.adapters.vendor_json import parse_or_none
from providers.errors import UnsupportedRequest
from providers.types import ProviderConfig

PROVIDER = "bedrock"
SIGNING_NAME = "bedrock"
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


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


def auth_headers(
    provider: ProviderConfig, *, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """SigV4 headers (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) from
    botocore's signer, or a Bedrock API key as a bearer token; the body must be sent exactly
    as signed."""
    if provider.aws is not None:
        # botocore is imported on the first signed call: about 25 MB that an installation
        # without Bedrock never pays.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        aws = provider.aws
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        credentials = Credentials(aws.access_key_id, aws.secret_access_key, aws.session_token)
        SigV4Auth(credentials, SIGNING_NAME, provider.region).add_auth(request)
        return {name.lower(): str(value) for name, value in request.headers.items()}
    if provider.api_key:
        return {**headers, "authorization": f"Bearer {provider.api_key}"}
    return headers
