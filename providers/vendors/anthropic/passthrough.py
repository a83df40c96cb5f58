"""A Messages API request sent to Anthropic as the client wrote it (``NativeRequest``): the
body's bytes with only ``model`` replaced, the client's ``anthropic-beta`` forwarded, the
provider's own key and ``anthropic-version``. The answer comes back twice: as Anthropic sent it
(``Completion.native``, each stream event's ``native``), which a Messages client receives, and
translated as for any client (``response``, ``stream``), which the gateway reads for usage,
the response cache and a Chat Completions rendering."""

from __future__ import annotations

import time
from dataclasses import replace

from providers.translation.native_body import with_model
from providers.translation.native_stream import NativeEvents, VendorFrames
from providers.translation.translated_stream import SSEFraming, TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.translation.vendor_json import json_headers
from providers.types import Completion, NativeRequest
from providers.vendors.anthropic.errors import map_error
from providers.vendors.anthropic.response import from_upstream
from providers.vendors.anthropic.stream import AnthropicStreamTranslator

# The client headers the Messages API reads besides the key and version: beta features.
FORWARDED_HEADERS = ("anthropic-beta",)


def native_request(
    call: UpstreamCall, native: NativeRequest, *, path: str
) -> tuple[str, dict[str, str], bytes]:
    """``(url, headers, body)`` of ``native`` sent to the deployment's provider at ``path``."""
    provider = call.deployment.provider
    headers = json_headers(stream=native.streamed, key_header="x-api-key", api_key=provider.api_key)
    headers["anthropic-version"] = provider.api_version
    headers.update((name, value) for name, value in native.headers if name in FORWARDED_HEADERS)
    content = with_model(native.content, call.deployment.upstream_model)
    return f"{provider.base_url}{path}", headers, content


async def complete(call: UpstreamCall, native: NativeRequest) -> Completion:
    request = native_request(call, native, path="/v1/messages")
    response = await post(call, request, map_error=map_error, stream=False)
    translated = from_upstream(response.content, created=int(time.time()))
    return replace(translated, native=response.content)


async def open_stream(call: UpstreamCall, native: NativeRequest) -> TranslatedStream:
    request = native_request(call, native, path="/v1/messages")
    response = await post(call, request, map_error=map_error, stream=True)
    provider = call.deployment.provider
    translator = AnthropicStreamTranslator(provider=provider.name, created=int(time.time()))
    return TranslatedStream(
        response, provider=provider, translator=NativeEvents(translator, VendorFrames()), framing=SSEFraming()
    )
