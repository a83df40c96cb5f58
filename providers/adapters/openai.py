"""OpenAI and OpenAI-compatible upstreams: the request goes out as the client sent it (model
name swapped, usage always requested when streaming) and the answer comes back untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import orjson

from providers.adapters.base import JsonObject, UpstreamCall, post, transport_failure
from providers.adapters.error_policy import (
    client_error,
    credentials_rejected,
    retry_headers,
    scrub,
    server_error,
    stream_error,
)
from providers.adapters.vendor_json import parse_or_none
from providers.errors import UpstreamError, UpstreamProtocolError
from providers.sse import SSEDecoder
from providers.types import Completion, DeploymentConfig, StreamEvent, Usage


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    payload = dict(body)
    payload["model"] = deployment.upstream_model
    if stream:
        options = payload.get("stream_options")
        merged = dict(options) if isinstance(options, dict) else {}
        merged["include_usage"] = True  # usage is always needed for accounting
        payload["stream_options"] = merged
    url = f"{deployment.provider.base_url}/chat/completions"
    return url, headers_for(deployment, stream=stream), orjson.dumps(payload)


def headers_for(deployment: DeploymentConfig, *, stream: bool = False) -> dict[str, str]:
    accept = "text/event-stream" if stream else "application/json"
    headers = {"content-type": "application/json", "accept": accept}
    if deployment.provider.api_key:
        headers["authorization"] = f"Bearer {deployment.provider.api_key}"
    return headers


def parse_usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached if isinstance(cached, int) else 0,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else 0,
    )


def _load_object(content: bytes) -> dict[str, object]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("The upstream provider sent a response that is not JSON.") from None
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError("The upstream provider sent a response that is not an object.")
    return parsed


def from_upstream(content: bytes) -> Completion:
    parsed = _load_object(content)
    if not isinstance(parsed.get("choices"), list):
        raise UpstreamProtocolError("The upstream provider sent a completion without choices.")
    return Completion(body=content, usage=parse_usage(parsed.get("usage")))


def from_chunk(data: bytes) -> StreamEvent:
    parsed = _load_object(data)
    if "error" in parsed and not parsed.get("choices"):
        return StreamEvent(payload=data, error=True)
    choices = parsed.get("choices")
    choices = choices if isinstance(choices, list) else []
    usage = parse_usage(parsed.get("usage"))
    text = []
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text.append(content)
    return StreamEvent(
        payload=data, usage=usage, usage_only=usage is not None and not choices, text="".join(text)
    )


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """The client sees the upstream's 4xx with its message, type, code and param; 401/403 (our
    credentials) and 5xx become a 502 that names the provider. Credentials and the base URL
    are redacted from every field."""
    provider = deployment.provider
    message, error_type, code, param = error_fields(content)
    text = scrub(message, provider) or ""
    retry = retry_headers(headers)
    if status in (401, 403):
        return credentials_rejected(provider.name, status)
    if 400 <= status < 500:
        return client_error(
            status,
            text,
            error_type=scrub(error_type, provider) or "invalid_request_error",
            code=scrub(code, provider),
            param=scrub(param, provider),
            headers=retry,
        )
    return server_error(provider.name, status, text, headers=retry)


def error_fields(content: bytes) -> tuple[str, str | None, str | None, str | None]:
    parsed = parse_or_none(content)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", None, None, None

    def text(name: str) -> str | None:
        value = error.get(name)
        return str(value) if isinstance(value, (str, int)) else None

    return text("message") or "", text("type"), text("code"), text("param")


class OpenAIStream:
    def __init__(
        self,
        response: httpx.Response,
        call: UpstreamCall,
        *,
        parse: Callable[[bytes], StreamEvent] = from_chunk,
    ) -> None:
        self._response = response
        self._config = call.deployment.provider
        self._provider = call.deployment.provider.name
        self._parse = parse

    def _event(self, data: bytes) -> StreamEvent:
        event = self._parse(data)
        return stream_error(event.payload, self._config) if event.error and event.payload else event

    async def events(self) -> AsyncIterator[StreamEvent]:
        decoder = SSEDecoder()
        try:
            async for chunk in self._response.aiter_raw():
                for event in decoder.feed(chunk):
                    if event.data == b"[DONE]":
                        return
                    yield self._event(event.data)
        except httpx.TransportError as exc:
            raise transport_failure(exc, self._provider) from None
        for event in decoder.flush():
            if event.data == b"[DONE]":
                return
            yield self._event(event.data)
        raise UpstreamProtocolError(
            f"The upstream provider '{self._provider}' ended the stream before it was complete."
        )

    async def aclose(self) -> None:
        await self._response.aclose()


class OpenAIAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content)

    async def open_stream(self, call: UpstreamCall) -> OpenAIStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        return OpenAIStream(await post(call, request, map_error=map_error, stream=True), call)
