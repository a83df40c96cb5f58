"""Stored responses in the database: sealed at rest with the provider secrets' keys, visible
only to their tenant while unexpired, deleted by the purge past the retention period (the
periodic task in the beat schedule)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from quotas.services import tenant_create
from stored_responses.models import StoredResponse
from stored_responses.services import (
    StoredContent,
    StoredResponseUnreadable,
    response_delete,
    response_get,
    response_store,
    responses_purge,
)
from stored_responses.tasks import purge_responses

pytestmark = pytest.mark.django_db

CONTENT = StoredContent(
    response=b'{"id":"resp_1","output":["secret words"]}', items=b'[{"text":"hello there"}]'
)


def store(response_id: str, *, tenant_id: int, days_old: float = 0) -> None:
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_old)
    response_store(response_id, tenant_id=tenant_id, key_id=None, created_at=created, content=CONTENT)


def test_sealed_at_rest_and_read_back_by_its_tenant_only(settings) -> None:
    settings.GATEWAY_SECRETS_KEYS = [Fernet.generate_key().decode()]
    acme, globex = tenant_create(name="acme"), tenant_create(name="globex")
    store("resp_1", tenant_id=acme.pk)
    row = StoredResponse.objects.get()
    assert b"secret words" not in row.response_sealed.encode() and "hello" not in row.items_sealed
    assert response_get("resp_1", tenant_id=acme.pk) == CONTENT
    assert response_get("resp_1", tenant_id=globex.pk) is None
    assert response_get("resp_2", tenant_id=acme.pk) is None
    assert response_delete("resp_1", tenant_id=globex.pk) is False
    assert StoredResponse.objects.count() == 1
    settings.GATEWAY_SECRETS_KEYS = [Fernet.generate_key().decode()]  # the sealing key rotated away
    with pytest.raises(StoredResponseUnreadable):
        response_get("resp_1", tenant_id=acme.pk)
    assert response_delete("resp_1", tenant_id=acme.pk) is True
    assert response_get("resp_1", tenant_id=acme.pk) is None


def test_expired_reads_as_unknown_and_the_purge_deletes_only_expired(settings) -> None:
    settings.GATEWAY_RESPONSES_RETENTION_DAYS = 30
    acme = tenant_create(name="acme")
    store("resp_old", tenant_id=acme.pk, days_old=30.01)
    store("resp_new", tenant_id=acme.pk, days_old=29.9)
    assert response_get("resp_old", tenant_id=acme.pk) is None
    assert response_delete("resp_old", tenant_id=acme.pk) is False
    assert response_get("resp_new", tenant_id=acme.pk) == CONTENT
    assert purge_responses() == 1
    assert list(StoredResponse.objects.values_list("id", flat=True)) == ["resp_new"]
    assert purge_responses() == 0


def test_purge_works_in_batches() -> None:
    acme = tenant_create(name="acme")
    for n in range(5):
        store(f"resp_{n}", tenant_id=acme.pk, days_old=40)
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    assert responses_purge(cutoff=cutoff, batch_size=2) == 5
    assert StoredResponse.objects.count() == 0


def test_the_purge_is_in_the_beat_schedule() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["purge-responses"]
    assert entry == {
        "task": "stored_responses.tasks.purge_responses",
        "schedule": django_settings.GATEWAY_RESPONSES_PURGE_SECONDS,
    }
    from gateway_site.celery import app

    assert "stored_responses.tasks.purge_responses" in app.tasks
