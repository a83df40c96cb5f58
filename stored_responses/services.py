"""Storing, reading, deleting and purging stored responses. Content goes in and out as JSON
bytes and is sealed with the provider secrets' Fernet keys (``GATEWAY_SECRETS_KEYS``, rotatable).

A response is visible only to its tenant and only while it is younger than the retention
period: another tenant's id, an expired one and a deleted one read exactly like an unknown one
(``None``), so an id tells nobody whether it exists elsewhere."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from providers.secrets import SecretUnreadable, decrypt_secret, encrypt_secret
from stored_responses.models import StoredResponse


class StoredResponseUnreadable(Exception):
    """The content cannot be unsealed with the configured keys (they were rotated away)."""


@dataclass(frozen=True, slots=True)
class StoredContent:
    response: bytes  # the response object's JSON
    items: bytes  # the JSON array of its input items


def retention_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Responses created before this are expired (``GATEWAY_RESPONSES_RETENTION_DAYS``)."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment - dt.timedelta(days=settings.GATEWAY_RESPONSES_RETENTION_DAYS)


def response_store(
    response_id: str,
    *,
    tenant_id: int,
    key_id: int | None,
    created_at: dt.datetime,
    content: StoredContent,
) -> None:
    """Keep a response; storing the same id again replaces it (a retried write)."""
    StoredResponse.objects.update_or_create(
        id=response_id,
        defaults={
            "tenant_id": tenant_id,
            "key_id": key_id,
            "created_at": created_at,
            "response_sealed": encrypt_secret(content.response.decode()),
            "items_sealed": encrypt_secret(content.items.decode()),
        },
    )


def _visible(response_id: str, *, tenant_id: int) -> StoredResponse | None:
    return StoredResponse.objects.filter(
        id=response_id, tenant_id=tenant_id, created_at__gte=retention_cutoff()
    ).first()


def response_get(response_id: str, *, tenant_id: int) -> StoredContent | None:
    """The tenant's unexpired response, or None (unknown, another tenant's, expired, deleted)."""
    row = _visible(response_id, tenant_id=tenant_id)
    if row is None:
        return None
    try:
        return StoredContent(
            response=decrypt_secret(row.response_sealed).encode(),
            items=decrypt_secret(row.items_sealed).encode(),
        )
    except SecretUnreadable:
        raise StoredResponseUnreadable(f"stored response {response_id} cannot be unsealed") from None


def response_delete(response_id: str, *, tenant_id: int) -> bool:
    """Delete the tenant's unexpired response; False when there was none to delete."""
    visible = StoredResponse.objects.filter(
        id=response_id, tenant_id=tenant_id, created_at__gte=retention_cutoff()
    )
    return visible.delete()[0] > 0


def responses_purge(*, cutoff: dt.datetime, batch_size: int = 5000) -> int:
    """Delete responses created before ``cutoff``, ``batch_size`` at a time (short
    transactions); returns how many."""
    deleted = 0
    while True:
        ids = list(
            StoredResponse.objects.filter(created_at__lt=cutoff)
            .order_by()
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += StoredResponse.objects.filter(id__in=ids).delete()[0]
