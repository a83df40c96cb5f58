"""Cost-quota alerts, off the request path: the settlement that first crosses a quota's
``alert_at`` threshold in a period (decided atomically by the store) hands a notice to the
``AlertDispatcher``, whose thread records it (``QuotaAlert``, unique per quota and period, so a
notice can never be delivered twice) and POSTs it as JSON to the quota's ``alert_webhook``."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time

import httpx
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.utils import timezone

from quotas.budget import from_micro
from quotas.limiter import QuotaAlertNotice
from quotas.models import CostQuota, QuotaAlert

logger = logging.getLogger(__name__)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def alert_payload(alert: QuotaAlert, notice: QuotaAlertNotice) -> dict[str, object]:
    quota = alert.quota
    owner_key = quota.key
    tenant = quota.tenant or (owner_key.tenant if owner_key is not None else None)
    return {
        "type": "quota.alert",
        "alert_id": alert.pk,
        "quota_id": quota.pk,
        "owner": notice.quota.owner,
        "tenant": tenant.name if tenant is not None else None,
        "key_prefix": owner_key.prefix if owner_key is not None else None,
        "period": quota.period,
        "period_key": notice.period.key,
        "period_start": _iso(notice.period.start),
        "period_end": _iso(notice.period.end),
        "limit_usd": str(alert.limit_usd),
        "threshold": str(alert.threshold),
        "spent_usd": str(alert.spent_usd),
        "hard": quota.hard,
        "fired_at": _iso(alert.fired_at),
    }


def quota_alert_record(notice: QuotaAlertNotice) -> QuotaAlert | None:
    """Record that the alert fired; None when it was already recorded for that period (or the
    quota no longer exists)."""
    quota = CostQuota.objects.select_related("tenant", "key__tenant").filter(pk=notice.quota.id).first()
    if quota is None:
        return None
    try:
        with transaction.atomic():
            return QuotaAlert.objects.create(
                quota=quota,
                period_key=notice.period.key,
                period_start=notice.period.start,
                spent_usd=from_micro(notice.spent_micro),
                limit_usd=quota.limit_usd,
                threshold=notice.quota.alert_at or 0,
                webhook=quota.alert_webhook,
            )
    except IntegrityError:
        return None


class AlertDispatcher:
    def __init__(
        self, *, timeout_seconds: float = 5.0, attempts: int = 3, backoff_seconds: float = 1.0
    ) -> None:
        self._queue: queue.SimpleQueue[QuotaAlertNotice | None] = queue.SimpleQueue()
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._thread = threading.Thread(target=self._run, name="quota-alerts", daemon=True)
        self._thread.start()

    def notify(self, notice: QuotaAlertNotice) -> None:
        """Hot path: never blocks, never raises."""
        self._queue.put_nowait(notice)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put_nowait(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            if notice is None:
                return
            close_old_connections()
            try:
                self._deliver(notice)
            except DatabaseError as exc:
                logger.error("quota alert for quota %s not recorded: %s", notice.quota.id, exc)
            finally:
                close_old_connections()

    def _deliver(self, notice: QuotaAlertNotice) -> None:
        alert = quota_alert_record(notice)
        if alert is None:
            return
        logger.warning(
            "quota %s reached %s of $%s in period %s (spent $%s)",
            alert.quota_id,
            alert.threshold,
            alert.limit_usd,
            notice.period.key,
            alert.spent_usd,
        )
        if not alert.webhook:
            return
        payload = alert_payload(alert, notice)
        for attempt in range(1, self._attempts + 1):
            alert.attempts = attempt
            try:
                response = httpx.post(alert.webhook, json=payload, timeout=self._timeout)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                alert.last_error = f"{type(exc).__name__}: {exc}"[:500]
                if attempt < self._attempts:
                    time.sleep(self._backoff * attempt)
                continue
            alert.delivered_at, alert.last_error = timezone.now(), ""
            break
        alert.save(update_fields=["attempts", "delivered_at", "last_error"])
