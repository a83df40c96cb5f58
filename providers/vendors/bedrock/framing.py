"""ConverseStream's binary event stream (``application/vnd.amazon.eventstream``) decoded with
botocore's ``EventStreamBuffer``, CRCs checked."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from providers.errors import UpstreamProtocolError


class EventStreamFraming:
    """``(event, payload)`` pairs: the ``:event-type`` of an event, or ``exception:<type>`` /
    ``error:<code>`` for failure frames (their payload is the error message JSON)."""

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer  # imported with the first stream

        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        from botocore.eventstream import ChecksumMismatch, ParserError

        self._buffer.add_data(chunk)
        try:
            return list(self._messages())
        except (ChecksumMismatch, ParserError) as exc:
            raise UpstreamProtocolError(
                f"The upstream provider sent a corrupt event stream ({exc})."
            ) from None

    def _messages(self) -> Iterator[tuple[str, bytes]]:
        for message in self._buffer:
            headers = message.headers
            kind = headers.get(":message-type")
            if kind == "event":
                yield str(headers.get(":event-type")), message.payload
            elif kind == "exception":
                yield f"exception:{headers.get(':exception-type')}", message.payload
            else:
                error = {"message": str(headers.get(":error-message", ""))}
                yield f"error:{headers.get(':error-code')}", orjson.dumps(error)

    def flush(self) -> list[tuple[str, bytes]]:
        return []
