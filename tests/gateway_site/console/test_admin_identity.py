"""Trusted issuers in the admin: added through the form (the revision bumps, so gateways load
it), and a second tenant cannot take the same issuer and audience."""

from __future__ import annotations

import pytest
from django.urls import reverse

from quotas.models import RateTier, Tenant, TrustedIssuer
from quotas.revision import bump_revision, current_revision

pytestmark = pytest.mark.django_db


def test_a_trusted_issuer_is_added_in_the_admin_and_bumps_the_revision(admin_client):
    bump_revision()
    before = current_revision()
    acme, globex = Tenant.objects.create(name="acme"), Tenant.objects.create(name="globex")
    tier = RateTier.objects.create(name="per-user", requests_per_minute=5)
    data = {
        "tenant": acme.pk,
        "issuer": "https://login.acme.example/realms/staff",
        "audience": "llm-gateway",
        "jwks_url": "",
        "subject_claim": "email",
        "models_claim": "llm_models",
        "tier_claim": "",
        "tier": tier.pk,
    }

    response = admin_client.post(reverse("admin:quotas_trustedissuer_add"), data)

    assert response.status_code == 302
    [row] = TrustedIssuer.objects.all()
    assert (row.tenant, row.subject_claim, row.models_claim, row.tier) == (acme, "email", "llm_models", tier)
    assert current_revision() == before + 1
    taken = admin_client.post(reverse("admin:quotas_trustedissuer_add"), {**data, "tenant": globex.pk})
    assert taken.status_code == 200
    assert "Trusted issuer with this Issuer and Audience already exists." in taken.content.decode()
    assert TrustedIssuer.objects.count() == 1
    listing = admin_client.get(reverse("admin:quotas_trustedissuer_changelist")).content.decode()
    assert "https://login.acme.example/realms/staff" in listing
