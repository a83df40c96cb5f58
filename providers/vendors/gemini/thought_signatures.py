"""Tool-call ids that carry the thought signature Gemini needs back on the next turn."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# A tool call's id is "call_<hex>", plus "__ts_<signature>" when Gemini sent a thought
# signature with the call: the client sends the id back with the tool result and the assistant
# message, so the signature returns to Gemini unchanged, whatever the client keeps.
SIGNATURE_MARK = "__ts_"

IdFactory = Callable[[], str]


def random_id() -> str:
    return "call_" + secrets.token_hex(8)


def tool_call_id(new_id: IdFactory, signature: object) -> str:
    base = new_id()
    return f"{base}{SIGNATURE_MARK}{signature}" if isinstance(signature, str) and signature else base


def signature_of(call_id: str) -> str | None:
    _, mark, signature = call_id.partition(SIGNATURE_MARK)
    return signature if mark and signature else None
