"""Celery tasks of the usage ledger: fetch their settings, call a service, return."""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging

import redis
from celery import shared_task
from django.conf import settings
from django.core.management import call_command

from accounting.content import content_purge
from accounting.outbox import consumer_name, drain, forget_idle_consumers, outbox_stream
from accounting.partitions import usage_partitions_prepare
from accounting.rollups import usage_purge, usage_rollup
from quotas.stores.redis_target import sync_client

logger = logging.getLogger(__name__)

# A drain run stops after this many batches so one task never holds a worker for long; beat
# sends the next one a moment later.
MAX_BATCHES_PER_RUN = 50


@functools.cache
def _worker_identity() -> tuple[redis.Redis, str]:
    """One Redis client and one consumer name per worker process."""
    client = sync_client(settings.REDIS_URL, timeout=10, connect_timeout=5)
    return client, consumer_name("celery")


@shared_task(name="accounting.tasks.drain_usage_outbox", ignore_result=True)
def drain_usage_outbox() -> int:
    """Move usage events from the Redis outbox into ``UsageRecord``; returns how many."""
    if not settings.REDIS_URL:
        return 0
    client, consumer = _worker_identity()
    return drain(
        client,
        stream=outbox_stream(settings.GATEWAY_REDIS_PREFIX),
        consumer=consumer,
        batch_size=settings.GATEWAY_USAGE_BATCH_SIZE,
        claim_idle_ms=int(settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS * 1000),
        max_batches=MAX_BATCHES_PER_RUN,
    )


@shared_task(name="accounting.tasks.forget_idle_consumers", ignore_result=True)
def forget_idle_outbox_consumers() -> int:
    """Drop the outbox group's consumers of processes long gone; returns how many."""
    if not settings.REDIS_URL:
        return 0
    client, consumer = _worker_identity()
    return len(
        forget_idle_consumers(
            client,
            stream=outbox_stream(settings.GATEWAY_REDIS_PREFIX),
            idle_ms=int(settings.GATEWAY_USAGE_CONSUMER_IDLE_SECONDS * 1000),
            keep=consumer,
        )
    )


def _retention_cutoff() -> dt.datetime:
    """Raw records created before this are purged (rolled up first); hours before it are final."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.GATEWAY_USAGE_RETENTION_DAYS)


@shared_task(name="accounting.tasks.rollup_usage", ignore_result=True)
def rollup_usage() -> int:
    """Recompute the hour and day rollups touched since the last run; returns the hours."""
    return usage_rollup(retention_cutoff=_retention_cutoff()).hours


@shared_task(name="accounting.tasks.purge_usage", ignore_result=True)
def purge_usage() -> int:
    """Delete raw records past the retention (rolled up first); rollups are kept."""
    cutoff = _retention_cutoff()
    usage_rollup(retention_cutoff=cutoff)
    return usage_purge(cutoff=cutoff, batch_size=settings.GATEWAY_USAGE_PURGE_BATCH)


@shared_task(name="accounting.tasks.prepare_usage_partitions", ignore_result=True)
def prepare_usage_partitions() -> int:
    """Create the usage records' month partitions ahead (PostgreSQL); returns how many."""
    now = dt.datetime.now(dt.UTC)
    return len(usage_partitions_prepare(now=now, ahead=settings.GATEWAY_USAGE_PARTITIONS_AHEAD))


@shared_task(name="accounting.tasks.reconcile_quotas", ignore_result=True)
def reconcile_quotas() -> None:
    """``manage.py reconcilequotas`` on a schedule (raises counters behind the records, releases
    orphaned reservations). Its report goes to the log at DEBUG, not to the stdout of the process
    that runs the schedule (a gateway's, when beat runs in process)."""
    if not settings.REDIS_URL:  # the counters are in each gateway process, started from the records
        return
    report = io.StringIO()
    call_command("reconcilequotas", stdout=report)
    for line in report.getvalue().splitlines():
        logger.debug("reconcilequotas: %s", line)


@shared_task(name="accounting.tasks.purge_request_content", ignore_result=True)
def purge_request_content() -> int:
    """Delete request contents past ``GATEWAY_CONTENT_RETENTION_DAYS``; returns how many."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.GATEWAY_CONTENT_RETENTION_DAYS)
    return content_purge(cutoff=cutoff, batch_size=settings.GATEWAY_USAGE_PURGE_BATCH)
