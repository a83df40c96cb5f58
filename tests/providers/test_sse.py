"""The SSE decoder fed recorded streams split at every byte boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "openai"


def decode_in_parts(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*cuts, len(data)]:
        events += decoder.feed(data[start:cut])
        start = cut
    return events + decoder.flush()


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_call.sse"])
def test_recorded_stream_decodes_identically_at_every_split(name):
    data = (FIXTURES / name).read_bytes()
    whole = decode_in_parts(data, [])
    assert whole[-1] == SSEEvent(event="", data=b"[DONE]")
    assert len(whole) == data.count(b"data: ")
    for cut in range(1, len(data)):
        assert decode_in_parts(data, [cut]) == whole, cut


def test_every_two_way_split_with_crlf_comments_and_multiline_data():
    data = b": keep-alive\r\nevent: delta\r\ndata: a\r\ndata:b\r\n\r\ndata: c\r\rdata: d\n\n"
    expected = [
        SSEEvent(event="delta", data=b"a\nb"),
        SSEEvent(event="", data=b"c"),
        SSEEvent(event="", data=b"d"),
    ]
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            assert decode_in_parts(data, [first, second]) == expected, (first, second)


def test_byte_by_byte_feed():
    data = (FIXTURES / "stream_text.sse").read_bytes()
    decoder = SSEDecoder()
    events = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]
    assert [e.data for e in events] == [e.data for e in decode_in_parts(data, [])]


def test_unterminated_final_event_is_returned_by_flush():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [SSEEvent(event="", data=b"tail")]


def test_event_without_data_is_not_dispatched():
    assert SSEDecoder().feed(b"event: ping\n\n: comment\n\n") == []
