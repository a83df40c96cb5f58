"""A secret file read again each time a new connection needs it: a password that rotates
(Kubernetes and Docker secrets, Vault Agent), for the Redis clients
(``quotas.stores.redis_target.FileCredentials``) and the database backend
(``gateway_site.postgresql``). The trailing newline is dropped, as the settings drop it at
start. A file that cannot be read, or is empty, leaves the value last read in use, logged with
its path only, never its content; so does one larger than 64 KiB (a wrong file, not a
password: read cut short, it would be a wrong password), as ``providers.files.read_secret``
refuses it."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024


class FollowedSecret:
    def __init__(self, path: str, *, what: str) -> None:
        self.path = path
        self._what = what
        self._last = ""

    def read(self) -> str:
        """The file's content now, else the last content read ("" when none was)."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
            value = raw.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("%s file %s cannot be read: %s", self._what, self.path, type(exc).__name__)
            return self._last
        if len(raw) > MAX_BYTES:
            logger.warning("%s file %s is larger than %d bytes", self._what, self.path, MAX_BYTES)
            return self._last
        if not value:
            logger.warning("%s file %s is empty", self._what, self.path)
            return self._last
        self._last = value
        return value
