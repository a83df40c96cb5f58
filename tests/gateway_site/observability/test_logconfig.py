"""The LOGGING dictionary: JSON lines keep error stack traces; the access log's level follows
``GATEWAY_ACCESS_LOG``."""

from __future__ import annotations

import logging
import sys

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

from gateway_site.observability.logconfig import ACCESS_LOGGER, logging_config


def _json_formatter() -> OrjsonFormatter:
    spec = logging_config(fmt="json", level="INFO", access_log=True)["formatters"]["json"]  # type: ignore[index]
    assert spec["()"] == "pythonjsonlogger.orjson.OrjsonFormatter"
    return OrjsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"])


def test_a_json_error_line_keeps_its_stack_trace():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "gateway.api", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = orjson.loads(_json_formatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "gateway.api", "failed x")
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert line["exc_info"].endswith("ValueError: boom")


def test_extra_fields_become_json_fields():
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "done", (), None)
    record.status, record.tenant = 200, "acme"
    line = orjson.loads(_json_formatter().format(record))
    assert (line["status"], line["tenant"], line["logger"]) == (200, "acme", "gateway.access")


def test_the_access_log_level_follows_the_setting():
    on = logging_config(fmt="text", level="INFO", access_log=True)["loggers"]
    off = logging_config(fmt="text", level="INFO", access_log=False)["loggers"]
    assert on[ACCESS_LOGGER] == {"level": "INFO"}  # type: ignore[index]
    assert off[ACCESS_LOGGER] == {"level": "WARNING"}  # type: ignore[index]
