"""Helpers for translation tests: recorded payloads, and feeding a recorded stream split at
every byte boundary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from providers.translation.translated_stream import Framing, StreamTranslator, translate_all
from providers.types import StreamEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"


def fixture(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / name).read_bytes()


def fixture_json(kind: str, name: str) -> dict:
    return orjson.loads(fixture(kind, name))


def translate_split_everywhere(
    data: bytes, make: Callable[[], tuple[StreamTranslator, Framing]]
) -> list[StreamEvent]:
    """The events of ``data`` fed whole; asserts that every two-piece split gives the same."""
    translator, framing = make()
    whole = translate_all(translator, framing, [data])
    for cut in range(1, len(data)):
        translator, framing = make()
        assert translate_all(translator, framing, [data[:cut], data[cut:]]) == whole, f"split at byte {cut}"
    return whole


def payloads(events: list[StreamEvent]) -> list[dict]:
    return [orjson.loads(e.payload) for e in events if e.payload is not None]
