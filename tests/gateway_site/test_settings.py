"""Settings derived from the environment the suite runs with (a Postgres DATABASE_URL)."""

from __future__ import annotations

import os

from django.conf import settings


def test_a_postgres_connection_attempt_gives_up_after_five_seconds_by_default():
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert "connect_timeout" not in os.environ["DATABASE_URL"]
    assert database["OPTIONS"]["connect_timeout"] == 5
