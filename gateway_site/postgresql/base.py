"""Django's PostgreSQL backend, with the password read from ``DATABASE_PASSWORD_FILE`` each
time a connection opens (the settings name it ``PASSWORD_FILE`` beside ``PASSWORD``): a rotated
password file is used by the next connection, with no restart. Connections already open stay
authenticated, as PostgreSQL and PgBouncer keep them; Django replaces each after
``CONN_MAX_AGE``. A file that cannot be read, or is empty, leaves the password last read in use
(``quotas.stores.secret_file``), else the one the settings read at start."""

from __future__ import annotations

import functools
from typing import Any

from django.db.backends.postgresql import base

from quotas.stores.secret_file import FollowedSecret


@functools.cache
def _followed(path: str) -> FollowedSecret:
    """One per file for the process: every thread's connections share what was read last."""
    return FollowedSecret(path, what="database password")


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        path = self.settings_dict.get("PASSWORD_FILE")
        if path:
            params["password"] = _followed(path).read() or self.settings_dict["PASSWORD"]
        return params
