"""The ``mock`` kind's adapter: the reply planned in-process, no network."""

from __future__ import annotations

import secrets
import time

import orjson

from providers.translation.chunks import usage_wire
from providers.translation.upstream import UpstreamCall
from providers.types import Completion
from providers.vendors.mock.reply import plan_reply
from providers.vendors.mock.response import choice_wire
from providers.vendors.mock.stream import MockStream


class MockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        plan = plan_reply(call.body)
        body = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.deployment.upstream_model,
            "choices": [choice_wire(choice) for choice in plan.choices],
            "usage": usage_wire(plan.usage),
        }
        return Completion(body=orjson.dumps(body), usage=plan.usage)

    async def open_stream(self, call: UpstreamCall) -> MockStream:
        # Planned here, so that a request the mock refuses is a 400 before the stream starts.
        return MockStream(call, plan=plan_reply(call.body))
