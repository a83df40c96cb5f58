"""AWS Bedrock Converse / ConverseStream (PROVIDERS.md §5): requests built by
``bedrock_request`` and signed with botocore's SigV4 signer, answers and errors read here, the
binary event stream decoded by ``bedrock_stream`` with botocore's parser.

Choices: ``n`` > 1, ``logprobs`` and ``response_format`` json_object are refused; json_schema
becomes ``outputConfig.textFormat``; images must be base64 data URLs; ``seed`` and penalties
are dropped; ``user`` becomes ``requestMetadata.user``. Bedrock sends no id: the completion id
is ``chatcmpl-`` + the ``x-amzn-RequestId`` header."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

import orjson

from providers.adapters.base import JsonObject, UpstreamCall, post
from providers.adapters.bedrock_request import auth_headers, converse_body
from providers.adapters.bedrock_stream import BedrockStreamTranslator, EventStreamFraming
from providers.adapters.bedrock_wire import error_name, finish_reason, usage_from
from providers.adapters.chunks import Choice, ToolCall, completion
from providers.adapters.error_policy import scrub, vendor_error
from providers.adapters.translated_stream import TranslatedStream
from providers.adapters.vendor_json import parse_or_none
from providers.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeout
from providers.types import Completion, DeploymentConfig

# The model id is one path segment: "/" (in ARNs) is escaped, the characters a URL path allows
# (":" of "...-v1:0" among them) are not. botocore escapes ":" too, but our transport (aiohttp's
# yarl) unescapes it on the wire, and the SigV4 signature must cover the path as sent.
_PATH_SAFE = ":@!$&'()*+,;="

# Bedrock's error names whose status does not say what the client should see.
_STATUS_BY_NAME = {"ModelNotReadyException": 503, "ModelErrorException": 502}


def model_url(deployment: DeploymentConfig, operation: str) -> str:
    model = quote(deployment.upstream_model, safe=_PATH_SAFE)
    return f"{deployment.provider.base_url}/model/{model}/{operation}"


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    url = model_url(deployment, "converse-stream" if stream else "converse")
    content = orjson.dumps(converse_body(body))
    headers = {
        "content-type": "application/json",
        "accept": "application/vnd.amazon.eventstream" if stream else "application/json",
    }
    return url, auth_headers(deployment.provider, url=url, body=content, headers=headers), content


def completion_id(headers: Mapping[str, str]) -> str:
    request_id = headers.get("x-amzn-requestid")
    return f"chatcmpl-{request_id}" if request_id else f"chatcmpl-{secrets.token_hex(12)}"


def from_upstream(content: bytes, *, created: int, model: str, id: str) -> Completion:
    parsed = parse_or_none(content)
    output = parsed.get("output") if isinstance(parsed, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    if not isinstance(parsed, dict) or not isinstance(blocks, list):
        raise UpstreamProtocolError("The upstream provider sent a response without output.message.content.")
    texts = [str(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)]
    calls = tuple(
        ToolCall(
            id=str(use.get("toolUseId", "")),
            name=str(use.get("name", "")),
            arguments=orjson.dumps(use.get("input", {})).decode(),
        )
        for b in blocks
        if isinstance(b, dict) and isinstance(use := b.get("toolUse"), dict)
    )
    choice = Choice(
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(parsed.get("stopReason")),
    )
    return completion(
        id=id, created=created, model=model, choices=[choice], usage=usage_from(parsed.get("usage"))
    )


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """``x-amzn-ErrorType`` names the error: ThrottlingException 429, ModelNotReadyException
    and ServiceUnavailableException 503, ModelTimeoutException 504, ResourceNotFoundException
    404 ``model_not_found``, access and signature failures an upstream configuration error."""
    parsed = parse_or_none(content)
    message = str(parsed.get("message") or parsed.get("Message") or "") if isinstance(parsed, dict) else ""
    name = error_name(headers, parsed)
    if name == "ModelTimeoutException" or status == 408:
        detail = scrub(message, deployment.provider)
        return UpstreamTimeout(f"The upstream provider '{deployment.provider.name}' timed out: {detail}")
    status = _STATUS_BY_NAME.get(name, status)
    code = "model_not_found" if name == "ResourceNotFoundException" else (name or None)
    return vendor_error(status, message, provider=deployment.provider, headers={}, code=code)


class BedrockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(
            response.content,
            created=int(time.time()),
            model=call.deployment.upstream_model,
            id=completion_id(response.headers),
        )

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = BedrockStreamTranslator(
            provider=provider,
            created=int(time.time()),
            model=call.deployment.upstream_model,
            id=completion_id(response.headers),
        )
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=EventStreamFraming()
        )
