"""The control-plane revision counter: bumped on every change, read by gateway processes.

When ``REDIS_URL`` is set a bump is also published on a channel so that every process reloads
at once instead of at its next poll."""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F

from quotas.models import ConfigRevision
from quotas.stores.redis_target import sync_client

logger = logging.getLogger(__name__)


def revision_channel() -> str:
    return f"{settings.GATEWAY_REDIS_PREFIX}config-changed"


def current_revision() -> int:
    row = ConfigRevision.objects.filter(pk=1).values_list("revision", flat=True).first()
    return int(row) if row is not None else 0


def _first_revision() -> int:
    """The revision a new counter row starts at: the clock in microseconds. A row created again
    (a restored backup, emptied tables) then starts past every revision a running process may
    hold; gateways reload when the revision differs from theirs, so a repeat would hide a change."""
    return time.time_ns() // 1000


def bump_revision() -> None:
    """Mark the control plane changed. Call inside the transaction that made the change."""
    updated = ConfigRevision.objects.filter(pk=1).update(revision=F("revision") + 1)
    if not updated:
        ConfigRevision.objects.get_or_create(pk=1, defaults={"revision": _first_revision()})
    if settings.REDIS_URL:
        transaction.on_commit(_publish_change)


def _publish_change() -> None:
    try:
        client = sync_client(settings.REDIS_URL, timeout=1)
        try:
            client.publish(revision_channel(), b"1")
        finally:
            client.close()
    except redis.RedisError as exc:
        # Processes still see the change at their next poll of the counter.
        logger.warning("could not publish a configuration change: %s", exc)
