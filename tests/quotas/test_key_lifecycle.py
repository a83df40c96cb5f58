"""Key rotation (``rotatekey``) and ``last_used_at`` written in batches, never per request."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from quotas.authentication.keys import hash_key
from quotas.models import ApiKey
from quotas.revision import bump_revision, current_revision
from quotas.services import key_issue, keys_mark_used, keys_revoke, tenant_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def issued():
    tenant = tenant_create(name="acme")
    return key_issue(tenant=tenant, name="ci")


def test_rotatekey_prints_the_new_secret_last_and_keeps_the_old_for_the_grace(issued):
    key, old_raw = issued
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    out, err = run("rotatekey", key.prefix, "--grace-hours", "24")

    new_raw = out.splitlines()[-1]
    stored = ApiKey.objects.get(pk=key.pk)
    assert out == new_raw + "\n"
    assert new_raw.startswith("sk-gw-") and new_raw != old_raw
    assert (stored.key_hash, stored.prefix) == (hash_key(new_raw), new_raw[:12])
    assert (stored.previous_key_hash, stored.previous_prefix) == (hash_key(old_raw), old_raw[:12])
    assert stored.previous_expires_at is not None
    assert abs(stored.previous_expires_at - (timezone.now() + dt.timedelta(hours=24))) < dt.timedelta(
        minutes=1
    )
    assert err.startswith(
        f"rotated key {old_raw[:12]}… (ci, tenant acme) to {new_raw[:12]}…; the old secret works until "
    )
    assert current_revision() == before + 1
    # During the grace the old raw key still names the key.
    run("revokekey", old_raw)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_rotatekey_without_grace_ends_the_old_secret(issued):
    key, old_raw = issued

    _, err = run("rotatekey", old_raw)

    stored = ApiKey.objects.get(pk=key.pk)
    assert (stored.previous_key_hash, stored.previous_expires_at) == ("", None)
    assert "the old secret works no longer" in err
    with pytest.raises(CommandError, match="no key matches"):
        run("rotatekey", old_raw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sk-gw-nothing-like-it",), "no key matches"),
        (("--grace-hours", "-1"), "--grace-hours must be zero or more"),
    ],
)
def test_rotatekey_refusals(issued, args, message):
    key, _ = issued
    argv = args if args[0].startswith("sk-") else (key.prefix, *args)
    with pytest.raises(CommandError, match=message):
        run("rotatekey", *argv)
    assert ApiKey.objects.get(pk=key.pk).key_hash == key.key_hash


def test_a_revoked_key_is_not_rotated(issued):
    key, _ = issued
    keys_revoke([key.pk])

    with pytest.raises(CommandError, match="is revoked; issue a new key instead"):
        run("rotatekey", key.prefix)
    stored = ApiKey.objects.get(pk=key.pk)
    assert (stored.key_hash, stored.previous_key_hash, stored.rotated_at) == (key.key_hash, "", None)


def test_keys_mark_used_moves_forward_only_in_one_update(django_assert_num_queries):
    tenant = tenant_create(name="acme")
    a, _ = key_issue(tenant=tenant, name="a")
    b, _ = key_issue(tenant=tenant, name="b")
    t1 = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    t2 = t1 + dt.timedelta(seconds=5)

    with django_assert_num_queries(1):
        keys_mark_used({a.pk: t2, b.pk: t1})
    keys_mark_used({a.pk: t1})  # an older batch (a replayed spool) never moves it back

    assert ApiKey.objects.get(pk=a.pk).last_used_at == t2
    assert ApiKey.objects.get(pk=b.pk).last_used_at == t1
    assert ApiKey.objects.get(pk=a.pk).updated_at == a.updated_at  # not a configuration change
