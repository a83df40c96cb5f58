"""The retention of request contents (``RequestContent``): deleted once older than
``GATEWAY_CONTENT_RETENTION_DAYS``, in batches (short transactions), by the beat task
``accounting.tasks.purge_request_content``."""

from __future__ import annotations

import datetime as dt

from accounting.models import RequestContent


def content_purge(*, cutoff: dt.datetime, batch_size: int = 5000) -> int:
    """Delete contents of requests created before ``cutoff``; returns how many."""
    deleted = 0
    while True:
        ids = list(
            RequestContent.objects.filter(created_at__lt=cutoff)
            .order_by()
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += RequestContent.objects.filter(id__in=ids).delete()[0]
