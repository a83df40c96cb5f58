"""The admin for limits: a tier's per-model lines inline, fired quota alerts read-only, and a
key's rotation and last use shown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from quotas.models import CostQuota, QuotaAlert, RateTier, TierModelLimit
from quotas.revision import bump_revision, current_revision
from quotas.services import key_issue, key_rotate, tenant_create

pytestmark = pytest.mark.django_db


def test_tier_with_per_model_lines_saved_inline(admin_client):
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()
    data = {
        "name": "standard",
        "algorithm": "leaky_bucket",
        "requests_per_minute": "600",
        "model_limits-TOTAL_FORMS": "1",
        "model_limits-INITIAL_FORMS": "0",
        "model_limits-MIN_NUM_FORMS": "0",
        "model_limits-MAX_NUM_FORMS": "1000",
        "model_limits-0-position": "0",
        "model_limits-0-pattern": "gpt-4o*",
        "model_limits-0-requests_per_minute": "100",
    }

    response = admin_client.post(reverse("admin:quotas_ratetier_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    line = TierModelLimit.objects.get()
    assert (line.tier.name, line.pattern, line.requests_per_minute) == ("standard", "gpt-4o*", 100)
    assert current_revision() == before + 1
    page = admin_client.get(reverse("admin:quotas_ratetier_change", args=[line.tier.pk])).content.decode()
    assert "Per-model limits" in page


def test_fired_alerts_are_listed_read_only(admin_client):
    tenant = tenant_create(name="acme")
    quota = CostQuota.objects.create(tenant=tenant, limit_usd=Decimal("100"), alert_at=Decimal("0.8"))
    alert = QuotaAlert.objects.create(
        quota=quota,
        period_key="m2026-11",
        spent_usd=Decimal("80.5"),
        limit_usd=Decimal("100"),
        threshold=Decimal("0.8"),
        delivered_at=timezone.now(),
        attempts=1,
    )

    listing = admin_client.get(reverse("admin:quotas_quotaalert_changelist"))
    detail = admin_client.get(reverse("admin:quotas_quotaalert_change", args=[alert.pk]))

    assert listing.status_code == detail.status_code == 200
    assert "m2026-11" in listing.content.decode()
    assert admin_client.get(reverse("admin:quotas_quotaalert_add")).status_code == 403
    assert 'name="spent_usd"' not in detail.content.decode()


def test_key_page_shows_rotation_and_last_use(admin_client):
    tenant = tenant_create(name="acme")
    key, _ = key_issue(tenant=tenant, name="ci")
    old_prefix = key.prefix
    key_rotate(key)

    page = admin_client.get(reverse("admin:quotas_apikey_change", args=[key.pk])).content.decode()

    assert "Last used at" in page and "Rotated at" in page
    assert key.prefix in page  # the new secret's prefix
    assert old_prefix not in page  # rotated without grace: nothing of the old secret remains
    assert RateTier.objects.count() == 0
