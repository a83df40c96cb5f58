"""Celery task of the stored responses: fetch the settings, call the service, return."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from stored_responses.services import responses_purge, retention_cutoff


@shared_task(name="stored_responses.tasks.purge_responses", ignore_result=True)
def purge_responses() -> int:
    """Delete stored responses past ``GATEWAY_RESPONSES_RETENTION_DAYS``; returns how many."""
    return responses_purge(cutoff=retention_cutoff(), batch_size=settings.GATEWAY_RESPONSES_PURGE_BATCH)
