"""The settings' secrets read from files that rotate without a restart: ``SECRET_KEY_FILE`` and
``GATEWAY_SECRETS_KEYS_FILE`` (each only when its variable is not set directly). The
configuration watcher looks at them (modification time, size, inode) with the provider key
files, in its own thread; a changed file is read and applied to the running settings:

* ``SECRET_KEY``: the new key signs from then on; the previous one goes first in
  ``SECRET_KEY_FALLBACKS`` (the last ``KEPT_FALLBACKS`` are kept), so admin sessions and signed
  values made before still verify, and secrets sealed under a key derived from it still open.
* ``GATEWAY_SECRETS_KEYS``: the Fernet keys of stored secrets (the first encrypts, every one
  decrypts), so a new key put first, then ``reencryptsecrets``, then the old key removed, rotates
  them across running gateways. A list that is not valid Fernet keys is refused (logged) and
  the keys in use stay.

The database and Redis password files are read by each new connection instead
(``gateway_site.postgresql``, ``quotas.stores.redis_target``). Nothing read is ever logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet
from django.conf import settings

from gateway_site.env import secrets_keys
from providers.files import Stamp, read_secret, stamp

logger = logging.getLogger(__name__)

KEPT_FALLBACKS = 3


class SettingsSecretFiles:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._paths = {
            name: environ[f"{name}_FILE"]
            for name in ("SECRET_KEY", "GATEWAY_SECRETS_KEYS")
            if environ.get(f"{name}_FILE") and not environ.get(name)
        }
        self._stamps: dict[str, Stamp] = {name: stamp(path) for name, path in self._paths.items()}

    def check(self) -> bool:
        """Apply the files that changed since the last look; whether a setting changed."""
        changed = False
        for name, path in self._paths.items():
            now = stamp(path)
            if now == self._stamps[name]:
                continue
            self._stamps[name] = now
            value = read_secret(path, owner="settings", what=name)
            if value is not None and _apply(name, value):
                logger.info("%s changed in %s; in use from now on", name, path)
                changed = True
        return changed


def _apply(name: str, value: str) -> bool:
    if name == "SECRET_KEY":
        if value == settings.SECRET_KEY:
            return False
        earlier = [k for k in settings.SECRET_KEY_FALLBACKS if k != value]
        settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY, *earlier][:KEPT_FALLBACKS]
        settings.SECRET_KEY = value
        return True
    keys = secrets_keys(value)
    if keys == list(settings.GATEWAY_SECRETS_KEYS):
        return False
    try:
        for key in keys:
            Fernet(key)
    except ValueError:
        logger.warning("GATEWAY_SECRETS_KEYS_FILE holds a value that is not a Fernet key; keys kept")
        return False
    settings.GATEWAY_SECRETS_KEYS = keys
    return True
