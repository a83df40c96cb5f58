"""What the HTTP layer answers itself, before or instead of the application: OpenAI's error
envelope ``{"error": {"message", "type", "param", "code"}}`` with the right status, an
``x-request-id`` and ``Connection: close`` (the rest of such a request is never read)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from gateway_site.http_edge.limits import EdgeLimits

logger = logging.getLogger("gateway.edge")

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    code: str

    @property
    def error_type(self) -> str:
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.error_type, "param": None, "code": self.code}
        return orjson.dumps({"error": error})

    def headers(self, request_id: str, *, length: int) -> Headers:
        return [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(length).encode()),
            (b"X-Request-Id", request_id.encode()),
        ]

    def wire(self, request_id: str) -> bytes:
        """The whole HTTP/1.1 response, for a connection with no request to answer through."""
        body = self.body()
        lines = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}".encode()]
        headers = [*self.headers(request_id, length=len(body)), (b"Connection", b"close")]
        lines.extend(name + b": " + value for name, value in headers)
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


def peer_name(transport: Any) -> str:
    peer = transport.getPeer()
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    return f"{host}:{port}" if host is not None else str(peer)


def log_refusal(refusal: Refusal, *, request_id: str, peer: str) -> None:
    logger.info(
        "refused %s %s from %s (request id %s)",
        refusal.status,
        refusal.code,
        peer,
        request_id,
        extra={"request_id": request_id, "status": refusal.status, "code": refusal.code, "peer": peer},
    )


BAD_REQUEST = Refusal(400, "The request is not valid HTTP/1.1.", "bad_request")
INVALID_CONTENT_LENGTH = Refusal(
    400, "The Content-Length header must be a non-negative integer.", "invalid_content_length"
)
UNSUPPORTED_TRANSFER_ENCODING = Refusal(
    501, "The only Transfer-Encoding accepted is chunked.", "unsupported_transfer_encoding"
)


def headers_too_large(limits: EdgeLimits) -> Refusal:
    return Refusal(
        431,
        f"The request headers exceed {limits.header_bytes} bytes or {limits.header_fields} fields.",
        "request_header_fields_too_large",
    )


def headers_late(limits: EdgeLimits) -> Refusal:
    return Refusal(
        408, f"The request headers did not arrive within {limits.header_seconds:g} s.", "request_timeout"
    )


def body_late(limits: EdgeLimits) -> Refusal:
    return Refusal(
        408, f"The request body did not arrive within {limits.body_seconds:g} s.", "request_timeout"
    )


_SERVER_CODES = {400: "bad_request", 500: "internal_error", 503: "timeout"}


def from_daphne(status: int, text: str) -> Refusal:
    """Daphne's own error page (an invalid header or path, an application that raised or did
    not answer in time) as an envelope carrying Daphne's text."""
    return Refusal(status, text.rstrip(".") + ".", _SERVER_CODES.get(status, "server_error"))
