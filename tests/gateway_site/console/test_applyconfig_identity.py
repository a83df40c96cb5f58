"""``applyconfig`` for ``tenants[].identity`` (trusted issuers of bearer JWTs): one or a list,
idempotent, the file's list is the whole list, an issuer and audience belong to one tenant,
unknown tiers and bad URLs refused; and the registry loads the trusts of active tenants only."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from providers.models import Provider
from quotas.authentication.registry import load_registry
from quotas.models import Tenant, TrustedIssuer
from tests.doc_examples import code_block
from tests.gateway_site.console.test_applyconfig_limits import apply

pytestmark = pytest.mark.django_db

EXAMPLE = """
tiers:
  - name: per-user
    requests_per_minute: 60
tenants:
  - name: acme
    identity:
      issuer: https://login.acme.test/realms/staff
      audience: llm-gateway
      jwks_url: https://login.acme.test/realms/staff/certs
      claims: {subject: email, models: llm_models, tier: llm_tier}
      tier: per-user
  - name: globex
    identity:
      - issuer: https://id.globex.test
        audience: gw
      - issuer: https://id.globex.test
        audience: gw-batch
"""


def rows() -> list[tuple[str, str, str, str, str, str, str, str | None]]:
    return [
        (
            t.tenant.name,
            t.issuer,
            t.audience,
            t.jwks_url,
            t.subject_claim,
            t.models_claim,
            t.tier_claim,
            t.tier.name if t.tier else None,
        )
        for t in TrustedIssuer.objects.select_related("tenant", "tier").order_by("id")
    ]


def test_identities_apply_idempotently_and_load_into_the_registry(tmp_path):
    lines = apply(tmp_path, EXAMPLE)

    assert [line for line in lines if "identity" in line] == [
        "created tenant acme identity https://login.acme.test/realms/staff (llm-gateway)",
        "created tenant globex identity https://id.globex.test (gw)",
        "created tenant globex identity https://id.globex.test (gw-batch)",
    ]
    assert rows() == [
        (
            "acme",
            "https://login.acme.test/realms/staff",
            "llm-gateway",
            "https://login.acme.test/realms/staff/certs",
            "email",
            "llm_models",
            "llm_tier",
            "per-user",
        ),
        ("globex", "https://id.globex.test", "gw", "", "sub", "", "", None),
        ("globex", "https://id.globex.test", "gw-batch", "", "sub", "", "", None),
    ]
    assert apply(tmp_path, EXAMPLE) == ["no changes"]

    registry = load_registry()
    assert sorted(registry.issuers) == ["https://id.globex.test", "https://login.acme.test/realms/staff"]
    [acme] = registry.issuers["https://login.acme.test/realms/staff"]
    assert (acme.tenant.tenant_name, acme.tenant.key_id, acme.tier is not None and acme.tier.name) == (
        "acme",
        0,
        "per-user",
    )
    assert [t.audience for t in registry.issuers["https://id.globex.test"]] == ["gw", "gw-batch"]

    Tenant.objects.filter(name="globex").update(is_active=False)
    assert sorted(load_registry().issuers) == ["https://login.acme.test/realms/staff"]


def test_the_files_list_is_the_whole_list_and_an_absent_identity_is_left_alone(tmp_path):
    apply(tmp_path, EXAMPLE)
    trimmed = EXAMPLE.split("  - name: globex")[0] + (
        "  - name: globex\n    identity:\n      - issuer: https://id.globex.test\n        audience: gw\n"
    )
    assert [line for line in apply(tmp_path, trimmed) if "identity" in line] == [
        "deleted tenant globex identity https://id.globex.test (gw-batch)"
    ]
    untouched = "tenants:\n  - name: acme\n    display_name: Acme\n"
    assert apply(tmp_path, untouched) == ["updated tenant acme (display_name)"]
    assert len(rows()) == 2
    emptied = "tenants:\n  - name: globex\n    identity: []\n"
    assert apply(tmp_path, emptied) == ["deleted tenant globex identity https://id.globex.test (gw)"]
    assert [r[0] for r in rows()] == ["acme"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tenants:\n  - name: a\n    identity: {issuer: https://i.test, audience: x, tier: gold}\n",
            "tenant a: identity https://i.test: unknown tier 'gold'",
        ),
        (
            "tenants:\n  - name: a\n    identity: {issuer: https://i.test, audience: x}\n"
            "  - name: b\n    identity: {issuer: https://i.test, audience: x}\n",
            "tenant b: identity https://i.test (audience 'x') is already trusted by tenant a",
        ),
        (
            "tenants:\n  - name: a\n    identity: {issuer: 'not a url', audience: x}\n",
            "tenants.0.identity.IdentitySpec.issuer: String should match pattern",
        ),
        (
            "tenants:\n  - name: a\n    identity: {issuer: https://i.test, audience: x, secret: y}\n",
            "tenants.0.identity.IdentitySpec.secret: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_identities_are_refused_and_nothing_is_applied(tmp_path, text, message):
    with pytest.raises(CommandError) as refused:
        apply(tmp_path, text)
    assert message in str(refused.value)
    assert TrustedIssuer.objects.count() == 0 and Tenant.objects.count() == 0


def test_a_trust_of_a_tenant_the_file_leaves_alone_is_not_taken_over(tmp_path):
    apply(tmp_path, "tenants:\n  - name: a\n    identity: {issuer: https://i.test, audience: x}\n")
    with pytest.raises(CommandError) as refused:
        apply(tmp_path, "tenants:\n  - name: b\n    identity: {issuer: https://i.test, audience: x}\n")
    assert "tenant b: identity https://i.test (audience 'x') is already trusted by tenant a" in str(
        refused.value
    )
    assert rows()[0][0] == "a" and Tenant.objects.filter(name="b").count() == 0


def test_the_documented_examples_apply_as_written(tmp_path):
    trust = code_block("docs/security.md", heading="Trusting an issuer")
    # The shorter form (no jwks_url, no default tier): applied after it, the same trust is updated.
    short = (
        "tenants:\n  - name: acme\n    identity:\n      issuer: https://login.acme.example/realms/staff\n"
        "      audience: llm-gateway\n      claims: {subject: email, models: llm_models, tier: llm_tier}\n"
    )
    mtls = code_block("docs/security.md", heading="Upstream TLS and mTLS")
    filed = code_block("docs/security.md", heading="From files")

    assert (
        apply(tmp_path, trust)[-1]
        == "created tenant acme identity https://login.acme.example/realms/staff (llm-gateway)"
    )
    assert apply(tmp_path, short) == [
        "updated tenant acme identity https://login.acme.example/realms/staff (llm-gateway) (jwks_url, tier)"
    ]
    apply(tmp_path, mtls)
    apply(tmp_path, filed)
    assert list(Provider.objects.order_by("name").values_list("name", "api_key_file", "tls_client_key")) == [
        ("internal-vllm", "/var/run/secrets/vllm/key", "/etc/gateway/tls/gateway-client.key"),
        ("openai", "/var/run/secrets/openai/api-key", ""),
    ]
