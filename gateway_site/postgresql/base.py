"""Django's PostgreSQL backend, with the password read from ``DATABASE_PASSWORD_FILE`` each
time a connection opens (the settings name it ``PASSWORD_FILE`` beside ``PASSWORD``): a rotated
password file is used by the next connection, with no restart. Connections already open stay
authenticated, as PostgreSQL and PgBouncer keep them; Django replaces each after
``CONN_MAX_AGE``. A file that cannot be read, or is empty, leaves the password last read in use
(logged with its path, never its content)."""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        path = self.settings_dict.get("PASSWORD_FILE")
        if path:
            password = _read(path)
            if password:
                self.settings_dict["PASSWORD"] = password  # the last one read, if the file goes
            params["password"] = self.settings_dict["PASSWORD"]
        return params


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            value = handle.read(MAX_BYTES).decode("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("database password file %s cannot be read: %s", path, type(exc).__name__)
        return ""
    if not value:
        logger.warning("database password file %s is empty", path)
    return value
