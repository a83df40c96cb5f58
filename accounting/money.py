"""The one money format, for the accounting side's callers: it lives in ``quotas.money`` (the
lowest layer, so that the admin's quota and key lists use it too)."""

from quotas.money import PLACES, STORED_PLACES, usd, usd_plain

__all__ = ["PLACES", "STORED_PLACES", "usd", "usd_plain"]
