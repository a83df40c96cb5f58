"""Provider secrets at rest: Fernet tokens, rotatable with MultiFernet.

Keys come from ``GATEWAY_SECRETS_KEYS`` (comma-separated Fernet keys, the first encrypts);
without it one key is derived from ``SECRET_KEY``."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    pass


def _cipher() -> MultiFernet:
    keys = list(settings.GATEWAY_SECRETS_KEYS)
    if not keys:
        digest = hashlib.sha256(b"gateway-provider-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt_secret(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode("utf-8")).decode("ascii")


def reencrypt_secret(token: str) -> str:
    """``token`` encrypted again under the newest key (the first of ``GATEWAY_SECRETS_KEYS``);
    SecretUnreadable when no configured key opens it."""
    try:
        return _cipher().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the configured keys") from None


def decrypt_secret(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable(
            "stored provider secret cannot be decrypted with the configured keys"
        ) from None
