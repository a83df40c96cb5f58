"""The thin I/O of the ``bedrock`` kind: send the signed request, read the answer or decode and
translate the event stream as it arrives. A request a client wrote in the Messages API's
format goes up from that format (``messages``) and comes back in it too (``as_messages``),
beside the usual translation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import replace

from providers.translation.native_stream import NativeEvents
from providers.translation.translated_stream import TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion, NativeRequest
from providers.vendors.bedrock.as_messages import ConverseAsMessages, message_from_converse
from providers.vendors.bedrock.errors import map_error
from providers.vendors.bedrock.framing import EventStreamFraming
from providers.vendors.bedrock.messages import converse_from_messages
from providers.vendors.bedrock.request import signed_request, to_upstream
from providers.vendors.bedrock.response import completion_id, from_upstream
from providers.vendors.bedrock.stream import BedrockStreamTranslator


def _request(call: UpstreamCall, *, stream: bool) -> tuple[str, dict[str, str], bytes]:
    if call.native is None:
        return to_upstream(call.body, call.deployment, stream=stream)
    payload = converse_from_messages(call.native.body, model_id=call.deployment.upstream_model)
    return signed_request(payload, call.deployment, stream=stream)


def _message_id(headers: Mapping[str, str]) -> str:
    return "msg_" + (headers.get("x-amzn-requestid") or secrets.token_hex(12))


class BedrockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        response = await post(call, _request(call, stream=False), map_error=map_error, stream=False)
        model = call.deployment.upstream_model
        translated = from_upstream(
            response.content, created=int(time.time()), model=model, id=completion_id(response.headers)
        )
        if call.native is None:
            return translated
        native = message_from_converse(response.content, id=_message_id(response.headers), model=model)
        return replace(translated, native=native)

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        response = await post(call, _request(call, stream=True), map_error=map_error, stream=True)
        model = call.deployment.upstream_model
        translator = BedrockStreamTranslator(
            provider=call.deployment.provider.name,
            created=int(time.time()),
            model=model,
            id=completion_id(response.headers),
        )
        return TranslatedStream(
            response,
            provider=call.deployment.provider,
            translator=_in_dialect(translator, call.native, id=_message_id(response.headers), model=model),
            framing=EventStreamFraming(),
        )


def _in_dialect(
    translator: BedrockStreamTranslator, native: NativeRequest | None, *, id: str, model: str
) -> BedrockStreamTranslator | NativeEvents:
    if native is None:
        return translator
    return NativeEvents(translator, ConverseAsMessages(id=id, model=model))
