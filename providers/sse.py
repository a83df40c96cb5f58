"""An incremental Server-Sent Events decoder: bytes in (split anywhere), events out.

Follows the WHATWG event-stream rules that matter to LLM streams: ``\\n``, ``\\r\\n`` and ``\\r``
line ends, ``:`` comment lines, multi-line ``data:`` joined with ``\\n``, one optional space
after the colon, an event dispatched at a blank line."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: bytes


class SSEDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two chunks
        self._pending_cr = False
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            line, found, rest = self._split_line(self._buffer)
            if not found:
                break
            self._buffer = rest
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """Events left when the stream ends without a final blank line."""
        events = self.feed(b"\n") if self._buffer else []
        tail = self._line(b"")
        return events + ([tail] if tail is not None else [])

    def _split_line(self, buffer: bytes) -> tuple[bytes, bool, bytes]:
        match = _LINE_END.search(buffer)
        if match is None:
            return buffer, False, b""
        if match.group() == b"\r" and match.end() == len(buffer):
            self._pending_cr = True  # may be the first half of a \r\n
        return buffer[: match.start()], True, buffer[match.end() :]

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(event=self._event, data=b"\n".join(self._data))
            self._data = []
            self._event = ""
            return event
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        return None
