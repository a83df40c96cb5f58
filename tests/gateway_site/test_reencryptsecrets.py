"""``reencryptsecrets``: stored provider secrets and stored responses, sealed under an old key,
are readable under the newest key alone afterwards; a value no key opens is named by row, never
shown, and left as it is; a second run rewrites the same rows and changes nothing readable."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from providers.models import Provider
from providers.secrets import SecretUnreadable, decrypt_secret, encrypt_secret
from quotas.services import tenant_create
from stored_responses.models import StoredResponse

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def run() -> str:
    out = StringIO()
    call_command("reencryptsecrets", "--batch-size", "2", stdout=out)
    return out.getvalue().strip()


def test_every_stored_secret_moves_to_the_newest_key(settings):
    settings.GATEWAY_SECRETS_KEYS = [OLD]
    Provider.objects.create(name="openai", kind="openai", api_key_encrypted=encrypt_secret("sk-openai-1"))
    Provider.objects.create(
        name="bedrock",
        kind="bedrock",
        region="us-east-1",
        aws_secret_access_key_encrypted=encrypt_secret("aws-secret-2"),
    )
    Provider.objects.create(name="plain", kind="openai", api_key_env="SOME_ENV")
    acme = tenant_create(name="acme")
    for n in range(3):
        StoredResponse.objects.create(
            id=f"resp_{n}",
            tenant=acme,
            created_at=dt.datetime.now(dt.UTC),
            response_sealed=encrypt_secret(f'{{"n": {n}}}'),
            items_sealed=encrypt_secret("[]"),
        )
    before = {p.name: p.api_key_encrypted for p in Provider.objects.all()}

    settings.GATEWAY_SECRETS_KEYS = [NEW, OLD]
    assert run() == "re-encrypted 2 provider(s) and 3 stored response(s)"

    settings.GATEWAY_SECRETS_KEYS = [NEW]  # the old key removed
    openai, bedrock = Provider.objects.get(name="openai"), Provider.objects.get(name="bedrock")
    assert decrypt_secret(openai.api_key_encrypted) == "sk-openai-1"
    assert openai.api_key_encrypted != before["openai"]
    assert decrypt_secret(bedrock.aws_secret_access_key_encrypted) == "aws-secret-2"
    assert Provider.objects.get(name="plain").api_key_encrypted == ""
    assert [decrypt_secret(r.response_sealed) for r in StoredResponse.objects.order_by("id")] == [
        '{"n": 0}',
        '{"n": 1}',
        '{"n": 2}',
    ]
    assert run() == "re-encrypted 2 provider(s) and 3 stored response(s)"
    assert decrypt_secret(Provider.objects.get(name="openai").api_key_encrypted) == "sk-openai-1"


def test_a_value_no_key_opens_is_named_and_left_alone(settings):
    settings.GATEWAY_SECRETS_KEYS = [OLD]
    lost = Provider.objects.create(name="lost", kind="openai", api_key_encrypted=encrypt_secret("sk-lost-9"))
    kept = Provider.objects.create(name="kept", kind="openai", api_key_encrypted="")
    settings.GATEWAY_SECRETS_KEYS = [NEW]
    sealed = Provider.objects.get(pk=lost.pk).api_key_encrypted

    with pytest.raises(CommandError) as refused:
        run()

    assert (
        str(refused.value)
        == f"1 row(s) no configured key opens, left as they are: providers.Provider {lost.pk}"
    )
    assert "sk-lost-9" not in str(refused.value)
    assert Provider.objects.get(pk=lost.pk).api_key_encrypted == sealed
    assert Provider.objects.get(pk=kept.pk).api_key_encrypted == ""
    with pytest.raises(SecretUnreadable):
        decrypt_secret(sealed)
