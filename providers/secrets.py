"""Provider secrets at rest: Fernet tokens, rotatable with MultiFernet.

Keys come from ``GATEWAY_SECRETS_KEYS`` (comma-separated Fernet keys, the first encrypts);
without it one key is derived from ``SECRET_KEY`` (and one from each of
``SECRET_KEY_FALLBACKS``, to decrypt)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    pass


def _derived(secret_key: str) -> str:
    digest = hashlib.sha256(b"gateway-provider-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _cipher() -> MultiFernet:
    keys = list(settings.GATEWAY_SECRETS_KEYS)
    if not keys:
        # derived from SECRET_KEY; those derived from the previous keys (a rotated
        # SECRET_KEY_FILE) still decrypt
        keys = [_derived(k) for k in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)]
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
