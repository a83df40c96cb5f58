"""The tenant and key management commands, called in-process with captured output."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from quotas.models import ApiKey, ConfigRevision, RateTier, Tenant
from quotas.revision import bump_revision, current_revision
from quotas.services import key_issue, tenant_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- createtenant ---------------------------------------------------------------------------


def test_createtenant_without_tier():
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    out, err = run("createtenant", "acme")

    assert (out, err) == ("created tenant acme\n", "")
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.display_name, tenant.tier, tenant.is_active) == ("acme", "", None, True)
    assert current_revision() == before + 1


def test_createtenant_with_tier_and_display_name():
    gold = RateTier.objects.create(name="gold", requests_per_minute=10)

    out, _ = run("createtenant", "acme", "--tier", "gold", "--display-name", "Acme Corp")

    assert out == "created tenant acme\n"
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.display_name, tenant.tier_id) == ("acme", "Acme Corp", gold.pk)


def test_createtenant_unknown_tier_creates_nothing():
    before = current_revision()

    with pytest.raises(CommandError) as excinfo:
        run("createtenant", "acme", "--tier", "platinum")

    assert str(excinfo.value) == "no rate tier named 'platinum'"
    assert Tenant.objects.count() == 0
    assert current_revision() == before


def test_createtenant_duplicate_name_is_refused():
    run("createtenant", "acme")
    before = current_revision()

    with pytest.raises(CommandError) as excinfo:
        run("createtenant", "acme")

    assert str(excinfo.value) == "a tenant named 'acme' already exists"
    assert Tenant.objects.count() == 1
    assert current_revision() == before


@pytest.mark.parametrize("name", ["two words", "acme/west", "", "é", "a" * 65])
def test_createtenant_refuses_a_name_that_is_not_a_slug(name):
    with pytest.raises(CommandError) as excinfo:
        run("createtenant", name)

    assert str(excinfo.value) == (
        f"{name!r} is not a valid tenant name: use up to 64 letters, digits, hyphens and underscores"
    )
    assert Tenant.objects.count() == 0
    assert not ConfigRevision.objects.exists()


# --- issuekey -------------------------------------------------------------------------------


def test_issuekey_prints_the_raw_key_once_and_stores_only_hash_and_prefix():
    tenant = tenant_create(name="acme")
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    out, err = run("issuekey", "--tenant", "acme", "--name", "ci")

    lines = out.splitlines()
    raw = lines[-1]
    assert raw.startswith("sk-gw-")
    assert len(raw) == len("sk-gw-") + 43
    assert out.count(raw) == 1
    assert raw not in err
    key = ApiKey.objects.get()
    assert err == f"issued key {key.prefix}… for tenant acme; it is shown only once:\n"
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[:12]
    assert len(key.prefix) == 12
    assert (key.tenant_id, key.name, key.allowed_models, key.expires_at, key.revoked_at) == (
        tenant.pk,
        "ci",
        [],
        None,
        None,
    )
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert not any(raw in str(value) for value in stored.values())
    assert current_revision() == before + 1


def test_issuekey_with_models_and_expiry_date():
    tenant_create(name="acme")

    out, _ = run(
        "issuekey",
        "--tenant",
        "acme",
        "--name",
        "ci",
        "--models",
        "gpt-4o*",
        "mock-*",
        "--expires",
        "2099-01-31",
    )

    key = ApiKey.objects.get()
    assert key.allowed_models == ["gpt-4o*", "mock-*"]
    # A date means "through that day, UTC".
    assert key.expires_at == dt.datetime(2099, 2, 1, tzinfo=dt.UTC)
    assert out.splitlines()[-1][:12] == key.prefix


def test_issuekey_with_expiry_datetime():
    tenant_create(name="acme")

    run("issuekey", "--tenant", "acme", "--name", "ci", "--expires", "2099-01-31T12:30:00+02:00")

    assert ApiKey.objects.get().expires_at == dt.datetime(2099, 1, 31, 10, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("expires", ["2000-01-01", "2001-02-03T04:05:06Z"])
def test_issuekey_refuses_an_expiry_in_the_past(expires):
    tenant_create(name="acme")
    before = current_revision()

    with pytest.raises(CommandError) as excinfo:
        run("issuekey", "--tenant", "acme", "--name", "ci", "--expires", expires)

    assert str(excinfo.value) == "--expires is in the past"
    assert ApiKey.objects.count() == 0
    assert current_revision() == before


def test_issuekey_refuses_a_malformed_expiry():
    tenant_create(name="acme")

    with pytest.raises(CommandError) as excinfo:
        run("issuekey", "--tenant", "acme", "--name", "ci", "--expires", "next tuesday")

    assert str(excinfo.value) == "--expires: 'next tuesday' is not YYYY-MM-DD or an ISO 8601 date-time"
    assert ApiKey.objects.count() == 0


def test_issuekey_unknown_tenant():
    with pytest.raises(CommandError) as excinfo:
        run("issuekey", "--tenant", "nobody", "--name", "ci")

    assert str(excinfo.value) == "no tenant named 'nobody'"
    assert ApiKey.objects.count() == 0


# --- revokekey ------------------------------------------------------------------------------


@pytest.fixture
def issued():
    tenant = tenant_create(name="acme")
    key, raw = key_issue(tenant=tenant, name="ci")
    return key, raw


def test_revokekey_by_raw_key(issued):
    key, raw = issued
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    out, _ = run("revokekey", raw)

    assert out == f"revoked key {key.prefix}… (ci, tenant acme)\n"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert current_revision() == before + 1


def test_revokekey_by_prefix(issued):
    key, _ = issued
    other, _ = key_issue(tenant=key.tenant, name="other")

    out, _ = run("revokekey", key.prefix)

    assert out == f"revoked key {key.prefix}… (ci, tenant acme)\n"
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None
    assert other.revoked_at is None


def test_revokekey_already_revoked_says_so_and_changes_nothing(issued):
    key, raw = issued
    run("revokekey", raw)
    key.refresh_from_db()
    revoked_at, updated_at, before = key.revoked_at, key.updated_at, current_revision()

    out, _ = run("revokekey", key.prefix)

    assert out == f"key {key.prefix}… was already revoked\n"
    key.refresh_from_db()
    assert (key.revoked_at, key.updated_at) == (revoked_at, updated_at)
    assert current_revision() == before


@pytest.mark.parametrize("given", ["sk-gw-nothere00000000000000", "sk-gw-", "unknown"])
def test_revokekey_unknown_key(issued, given):
    key, _ = issued
    before = current_revision()

    with pytest.raises(CommandError) as excinfo:
        run("revokekey", given)

    assert str(excinfo.value) == "no key matches"
    key.refresh_from_db()
    assert key.revoked_at is None
    assert current_revision() == before


def test_revokekey_ambiguous_prefix_revokes_nothing_but_the_raw_key_still_works(issued):
    key, _ = issued
    twin, twin_raw = key_issue(tenant=key.tenant, name="twin")
    # Two keys sharing a display prefix (unlikely, 2**36 values, but nothing prevents it).
    ApiKey.objects.filter(pk=key.pk).update(prefix=twin.prefix)

    with pytest.raises(CommandError) as excinfo:
        run("revokekey", twin.prefix)

    assert str(excinfo.value) == "more than one key has that prefix; give the key"
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0

    out, _ = run("revokekey", twin_raw)

    assert out == f"revoked key {twin.prefix}… (twin, tenant acme)\n"
    assert list(ApiKey.objects.filter(revoked_at__isnull=False).values_list("name", flat=True)) == ["twin"]
