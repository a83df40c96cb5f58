"""Twisted's HTTP/1.1 channel with the gateway's rules.

Twisted buffers a whole request body (to a temporary file past 100 kB) before its request is
processed, and its only timeout is an idle one that every byte resets, so a client trickling
headers or a body is held forever. This channel instead hands a request with a body to its
``StreamedRequest`` as soon as the headers are complete (the body is then read as the
application asks for it), gives the headers and the body each a deadline (408), and answers
what Twisted refuses (a malformed request, oversized headers, a bad ``Content-Length``) in the
API's error envelope instead of a bare ``400``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.base import DelayedCall
from twisted.web import http

from gateway_site.http_edge.limits import EdgeLimits
from gateway_site.http_edge.refusals import (
    BAD_REQUEST,
    INVALID_CONTENT_LENGTH,
    UNSUPPORTED_TRANSFER_ENCODING,
    Refusal,
    body_late,
    headers_late,
    headers_too_large,
    log_refusal,
    peer_name,
)
from gateway_site.observability.request_ids import new_request_id

if TYPE_CHECKING:
    from gateway_site.http_edge.request import StreamedRequest

_TRANSFER_CODINGS = (b"chunked", b"identity")

# Twisted's channel is mostly untyped, and typed through zope interfaces mypy cannot read:
# subclassed as Any, what this module adds is checked and Twisted's side is not pretended to be.
_TwistedChannel: Any = http.HTTPChannel


class GatewayChannel(_TwistedChannel):  # type: ignore[misc]
    def __init__(self, limits: EdgeLimits) -> None:
        super().__init__()
        self.limits = limits
        self._deadline: DelayedCall | None = None
        self._body_held = False  # reading paused until the application asks for more body
        self._continue_owed = False  # ``Expect: 100-continue`` answered when the body is asked for
        self._closing = False

    # --- deadlines: the headers from the connection's start or the request's first byte, the
    # body from the end of the headers. Between requests Twisted's idle timeout applies.

    def connectionMade(self) -> None:
        super().connectionMade()
        self._arm(self.limits.header_seconds, self._headers_late)

    def dataReceived(self, data: bytes) -> None:
        if self._deadline is None and not self._handlingRequest and not self._closing:
            self._arm(self.limits.header_seconds, self._headers_late)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._disarm()
        self._continue_owed = False
        super().allHeadersReceived()
        if self.length != 0 and not self._closing:
            self._arm(self.limits.body_seconds, self._body_late)
            self.requests[-1].dispatch(self._command, self._path, self._version)

    def allContentReceived(self) -> None:
        self._disarm()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        self._disarm()
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:
        self._disarm()
        super().connectionLost(reason)

    def _arm(self, seconds: float, expired: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.callLater(seconds, expired)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        self.refuse(headers_late(self.limits))

    def _body_late(self) -> None:
        self._deadline = None
        self.refuse(body_late(self.limits))

    # --- refusals

    def lineReceived(self, line: bytes) -> None:
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self.refuse(headers_too_large(self.limits))
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.refuse(headers_too_large(self.limits))

    def headerReceived(self, line: bytes) -> bool:
        refusal = self._header_refusal(line)
        if refusal is not None:
            self.refuse(refusal)
            return False
        return bool(super().headerReceived(line))

    def _header_refusal(self, line: bytes) -> Refusal | None:
        """A refusal more precise than Twisted's bare 400 for this header line, if it has one."""
        if self._receivedHeaderCount >= self.maxHeaders:
            return headers_too_large(self.limits)
        name, _, value = line.partition(b":")
        name, value = name.lower(), value.strip(b" \t")
        if name == b"content-length" and not value.isdigit():
            return INVALID_CONTENT_LENGTH
        if name == b"transfer-encoding" and value.lower() not in _TRANSFER_CODINGS:
            return UNSUPPORTED_TRANSFER_ENCODING
        return None

    def _respondToBadRequestAndDisconnect(self) -> None:
        self.refuse(BAD_REQUEST)

    def refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` and close the connection: through the request whose body is being
        read, if there is one (its application then hears of a disconnect), else directly."""
        if self._closing:
            return
        self._closing = True
        self._disarm()
        request = self._current()
        if request is not None and request.dispatched:
            request.refuse(refusal)
            return
        request_id = new_request_id()
        log_refusal(refusal, request_id=request_id, peer=peer_name(self.transport))
        self.transport.write(refusal.wire(request_id))
        self.loseConnection()

    def _current(self) -> StreamedRequest | None:
        current: StreamedRequest | None = self.requests[-1] if self.requests else None
        return current

    # --- reading the body only while the application asks for it

    def _send100Continue(self) -> None:
        self._continue_owed = True

    def send_continue(self) -> None:
        """The application asked for the body: a client that waits for ``100 Continue`` sends it
        now (and one refused before, say for its key, never sends it)."""
        if self._continue_owed:
            self._continue_owed = False
            super()._send100Continue()

    def hold_body(self) -> None:
        self._body_held = True
        self._networkProducer.pauseProducing()

    def release_body(self) -> None:
        self._body_held = False
        if not self._waitingForTransport:
            self._networkProducer.resumeProducing()

    def resumeProducing(self) -> None:
        # The transport's write buffer drained; Twisted would resume reading, but a held body
        # stays unread until the application asks for it.
        super().resumeProducing()
        if self._body_held:
            self._networkProducer.pauseProducing()
