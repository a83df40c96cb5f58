"""Request ids: the gateway's own (``req_`` and 24 hex digits), on every response, log line,
span and usage record, and the client's ``X-Request-ID`` when it is well formed."""

from __future__ import annotations

import re
import secrets

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def client_request_id(header: str | None) -> str:
    """A well-formed client-supplied ``X-Request-ID`` (letters, digits, ``._:-``, at most 64)."""
    return header if header and _CLIENT_REQUEST_ID.fullmatch(header) else ""
