"""Gateway API key format: ``sk-gw-`` followed by 43 URL-safe random characters.

Keys carry 256 bits of entropy, so a plain SHA-256 is a safe stored form (no slow hash is
needed) and lets a lookup be one dictionary access."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sk-gw-"
DISPLAY_PREFIX_LENGTH = 12
_MAX_KEY_LENGTH = 200
_MAX_TOKEN_LENGTH = 8192  # a bearer JWT (quotas.authentication.tokens)


@dataclass(frozen=True, slots=True)
class NewKey:
    raw: str
    prefix: str
    key_hash: str


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(raw=raw, prefix=raw[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(raw))


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The one place a presented key is read: ``Authorization: Bearer <key>`` first, then
    ``X-API-Key``. Returns None when neither holds a plausible key (or bearer JWT)."""
    candidate: str | None = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            candidate = value.strip()
    if not candidate and x_api_key:
        candidate = x_api_key.strip()
    if not candidate or not candidate.isascii():
        return None
    if len(candidate) > (_MAX_TOKEN_LENGTH if candidate.count(".") == 2 else _MAX_KEY_LENGTH):
        return None
    return candidate
