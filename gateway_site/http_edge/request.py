"""Daphne's request, started when its headers are complete, its body handed to the application
as the application reads it.

Daphne starts the application only once Twisted has buffered the whole body, then queues all of
it at once, so an upload of any size is read, stored and held in memory before the application
can refuse it. A ``StreamedRequest`` with a body is dispatched by ``GatewayChannel`` at the end of
its headers (Daphne's own ``process`` validates them and starts the application), and delivers
the body in the pieces the socket gives, one batch after the application read the previous
one; in between, the socket is not read. An application that answers without reading the whole
body (a bad key, a body past its limit) ends the request: the rest is never read and the
connection closes after the response. Requests without a body take Daphne's path unchanged.

Daphne keeps an entry per request in its server's ``connections`` and drops it in a sweep once a
second (``application_checker``), so the sweep walks every request of the last second on the
event loop: at 700 requests a second, 5 to 13 ms at a stretch, in which no request moves. A
request here drops its own entry when both its response is finished (or its client gone) and
its application has returned; one whose application raised is left to the sweep, which logs the
exception as it always has."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from daphne.http_protocol import WebRequest

from gateway_site.http_edge.channel import GatewayChannel
from gateway_site.http_edge.refusals import Refusal, from_daphne, log_refusal, peer_name
from gateway_site.observability.request_ids import new_request_id


class _Unbuffered:
    """Stands for the body file Daphne reads when it starts the application: reported closed,
    so Daphne queues nothing itself; the body follows as it arrives."""

    closed = True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _Receipt(Mapping[str, object]):
    """An ``http.request`` message that tells its request the first time the application looks
    into it. Daphne's ``receive`` is a plain queue, so reading a message is the only sign of
    demand the application gives: the request hands over more, and reads more of the socket,
    only after the application read what it was handed."""

    __slots__ = ("_message", "_taken")

    def __init__(self, body: bytes, *, more_body: bool, taken: Callable[[], None]) -> None:
        self._message: dict[str, object] = {"type": "http.request", "body": body, "more_body": more_body}
        self._taken: Callable[[], None] | None = taken

    def __getitem__(self, key: str) -> object:
        taken, self._taken = self._taken, None
        if taken is not None:
            taken()
        return self._message[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._message)

    def __len__(self) -> int:
        return len(self._message)


class StreamedRequest(WebRequest):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatched = False
        self.abandoned = False  # answered before the body was complete: nothing more is read
        self._pending: deque[bytes] = deque()  # received, not handed to the application yet
        self._unread = 0  # messages handed to the application that it has not read yet
        self._asked = False  # the application read the first message: it wants the body
        self._complete = False  # the whole body was received
        self._ended = False  # the last message (``more_body`` false) was handed over

    def gotLength(self, length: int | None) -> None:
        # Only GatewayChannel dispatches a request before its body (an HTTP/2 stream does not).
        if length == 0 or not isinstance(self.channel, GatewayChannel):
            super().gotLength(length)
        else:
            self.content = _Unbuffered()

    def dispatch(self, command: bytes, path: bytes, version: bytes) -> None:
        """Start the application on the request's headers; the body follows as it reads."""
        self.method, self.uri, self.clientproto = command, path, version
        self.path = path.split(b"?", 1)[0]
        self.args: dict[bytes, list[bytes]] = {}
        self.dispatched = True
        self.channel.hold_body()
        self.process()  # Daphne: validate, build the scope, start the application (or refuse)
        if self.application_queue is not None and not self.finished:
            self._hand(b"", more_body=True)  # read when the application first asks for the body

    def handleContentChunk(self, data: bytes) -> None:
        if not self.abandoned:
            self._pending.append(data)
            self._flow()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self.dispatched:
            super().requestReceived(command, path, version)
            return
        self._complete = True
        if not self.abandoned:
            self.channel.release_body()  # what follows is the next request's: Twisted's rules
        self._flow()

    def _hand(self, body: bytes, *, more_body: bool) -> None:
        self._unread += 1
        self.application_queue.put_nowait(_Receipt(body, more_body=more_body, taken=self._taken))

    def _taken(self) -> None:
        self._unread -= 1
        if self.finished or self._disconnected:
            return
        if not self._asked:
            self._asked = True
            self.channel.send_continue()
        self._flow()

    def _flow(self) -> None:
        """Hand over what arrived once the application read everything handed before; read the
        socket only while the application waits for more."""
        if not self._asked or self._unread or self.abandoned or self.finished or self._disconnected:
            return
        while self._pending:
            self._hand(self._pending.popleft(), more_body=True)
        if self._complete:
            if not self._ended:
                self._ended = True
                self._hand(b"", more_body=False)
        elif self._unread:
            self.channel.hold_body()
        else:
            self.channel.release_body()

    def finish(self) -> None:
        super().finish()
        self._reap_when_done()

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self._reap_when_done()

    def _reap_when_done(self) -> None:
        """Once this request is over, drop Daphne's entry for it when its application returns
        (at once if it has; finishing, then losing the connection, may ask twice)."""
        details = self.server.connections.get(self)
        if details is None or "disconnected" not in details:
            return
        instance = details.get("application_instance")
        if instance is not None:  # none: refused before an application began, the sweep's
            instance.add_done_callback(self._reap)

    def _reap(self, instance: Any) -> None:
        details = self.server.connections.get(self)
        if details is None or details.get("application_instance") is not instance:
            return  # dropped already, or reaped by the sweep
        if not instance.cancelled() and instance.exception() is not None:
            return  # the sweep logs it
        del self.server.connections[self]

    def handle_reply(self, message: Mapping[str, Any]) -> None:
        started = message["type"] == "http.response.start"
        if started and self.dispatched and not self._complete and not self.finished:
            self._abandon()
        super().handle_reply(message)

    def _abandon(self) -> None:
        """The application answers before the whole body arrived: the rest is never read, and
        the connection closes after the response (what follows on it is unparseable)."""
        self.abandoned = True
        self._pending.clear()
        self.channel.hold_body()
        self._close_after_response()

    def _close_after_response(self) -> None:
        self.channel.persistent = False
        self.responseHeaders.setRawHeaders(b"Connection", [b"close"])

    def refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` in the application's place (it hears of a disconnect) and close;
        once the application's response has begun, only closing is left."""
        if self.finished or self.channel is None:
            return
        if self._response_started:
            self.channel.transport.abortConnection()
            return
        request_id = new_request_id()
        log_refusal(refusal, request_id=request_id, peer=peer_name(self.channel.transport))
        self._close_after_response()
        body = refusal.body()
        headers = refusal.headers(request_id, length=len(body))
        self.handle_reply({"type": "http.response.start", "status": refusal.status, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": body})

    def basic_error(self, status: int, status_text: bytes, body: str) -> None:
        # Daphne's own error page (an invalid header or path, an application that raised or
        # did not answer in time), in the API's envelope.
        self.refuse(from_daphne(status, body))
