"""The ``LOGGING`` dictionary (docs/operations.md, "Logs"): text lines for people, or one JSON object per line
(python-json-logger on orjson) for machines; error records keep their stack trace (the JSON
``exc_info`` field). The access log (logger ``gateway.access``) is at INFO when on, and raised
to WARNING when off, so ``isEnabledFor(INFO)`` is false and an access line costs nothing.
A request refused for its ``Host`` header (not in ``ALLOWED_HOSTS``) is logged as one line: the
client's mistake, not the server's, it carries no stack trace."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "gateway.access"


class WithoutTraceback(logging.Filter):
    """Keeps the record's message, drops its stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(*, fmt: str, level: str, access_log: bool) -> dict[str, object]:
    """``fmt`` is ``text`` or ``json``; ``level`` the root level (``GATEWAY_LOG_LEVEL``)."""
    formatters: dict[str, object] = {
        "text": {"format": _TEXT},
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": _TEXT,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "filters": {"without_traceback": {"()": WithoutTraceback}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # httpx logs every upstream URL at INFO; upstream addresses stay out of the logs.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            ACCESS_LOGGER: {"level": "INFO" if access_log else "WARNING"},
            "django.security.DisallowedHost": {"filters": ["without_traceback"]},
        },
    }
