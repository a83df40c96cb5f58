"""Provider kinds and their own settings: applyconfig, the admin form and the catalog's
``ProviderConfig`` (defaults filled in, secrets resolved)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from providers.catalog import load_catalog
from providers.models import Deployment, Provider, PublicModel
from providers.secrets import decrypt_secret, encrypt_secret
from providers.types import AwsCredentials, ProviderConfig
from quotas.revision import current_revision

pytestmark = pytest.mark.django_db

ALL_KINDS = """\
providers:
  - name: claude
    kind: anthropic
    api_key_env: GW_T_ANTHROPIC_KEY
  - name: claude-pinned
    kind: anthropic
    base_url: http://127.0.0.1:9101/
    api_version: "2024-01-01"
  - name: azure-east
    kind: azure
    base_url: https://myres.openai.azure.com
    api_version: "2025-01-01-preview"
    api_key_env: GW_T_AZURE_KEY
  - name: google
    kind: gemini
    api_key_env: GW_T_GEMINI_KEY
  - name: aws
    kind: bedrock
    region: eu-west-1
    aws_access_key_id_env: GW_T_AWS_ID
    aws_secret_access_key_env: GW_T_AWS_SECRET
    aws_session_token_env: GW_T_AWS_TOKEN
  - name: aws-bearer
    kind: bedrock
    region: us-east-1
    base_url: http://127.0.0.1:9102
    api_key_env: GW_T_BEDROCK_KEY
models:
  - name: m
    deployments:
      - {provider: claude, model: claude-sonnet-4, free: true}
      - {provider: claude-pinned, model: claude-haiku, priority: 2, free: true}
      - {provider: azure-east, model: my-gpt4o-deployment, priority: 3, free: true}
      - {provider: google, model: gemini-2.5-flash, priority: 4, free: true}
      - {provider: aws, model: "anthropic.claude-3-haiku-20240307-v1:0", priority: 5, free: true}
      - {provider: aws-bearer, model: amazon.nova-lite-v1:0, priority: 6, free: true}
"""


def apply_text(tmp_path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    out = StringIO()
    call_command("applyconfig", str(path), stdout=out)
    return out.getvalue()


def refused(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CommandError) as excinfo:
        call_command("applyconfig", str(path), stdout=StringIO())
    assert not Provider.objects.exists()
    return str(excinfo.value).removeprefix(f"{path}: ")


def configs() -> dict[str, ProviderConfig]:
    route = load_catalog().models["m"]
    return {d.provider.name: d.provider for d in route.deployments}


def test_every_kind_applies_with_its_settings_and_reapplies_as_no_change(tmp_path, monkeypatch):
    for name, value in {
        "GW_T_ANTHROPIC_KEY": "sk-ant-1",
        "GW_T_AZURE_KEY": "az-1",
        "GW_T_GEMINI_KEY": "AIza-1",
        "GW_T_AWS_ID": "AKIDEXAMPLE",
        "GW_T_AWS_SECRET": "aws-secret-1",
        "GW_T_AWS_TOKEN": "aws-token-1",
        "GW_T_BEDROCK_KEY": "bedrock-key-1",
    }.items():
        monkeypatch.setenv(name, value)
    apply_text(tmp_path, ALL_KINDS)
    revision = current_revision()

    assert apply_text(tmp_path, ALL_KINDS) == "no changes\n"
    assert current_revision() == revision
    aws = Provider.objects.get(name="aws")
    assert (aws.kind, aws.region, aws.aws_access_key_id_env, aws.aws_secret_access_key_env) == (
        "bedrock",
        "eu-west-1",
        "GW_T_AWS_ID",
        "GW_T_AWS_SECRET",
    )
    assert configs() == {
        "claude": ProviderConfig(
            name="claude",
            kind="anthropic",
            base_url="https://api.anthropic.com",
            api_key="sk-ant-1",
            api_version="2023-06-01",
        ),
        "claude-pinned": ProviderConfig(
            name="claude-pinned", kind="anthropic", base_url="http://127.0.0.1:9101", api_version="2024-01-01"
        ),
        "azure-east": ProviderConfig(
            name="azure-east",
            kind="azure",
            base_url="https://myres.openai.azure.com",
            api_key="az-1",
            api_version="2025-01-01-preview",
        ),
        "google": ProviderConfig(
            name="google",
            kind="gemini",
            base_url="https://generativelanguage.googleapis.com",
            api_key="AIza-1",
            api_version="v1beta",
        ),
        "aws": ProviderConfig(
            name="aws",
            kind="bedrock",
            base_url="https://bedrock-runtime.eu-west-1.amazonaws.com",
            region="eu-west-1",
            aws=AwsCredentials("AKIDEXAMPLE", "aws-secret-1", "aws-token-1"),
        ),
        "aws-bearer": ProviderConfig(
            name="aws-bearer",
            kind="bedrock",
            base_url="http://127.0.0.1:9102",
            api_key="bedrock-key-1",
            region="us-east-1",
        ),
    }


def test_provider_config_repr_hides_every_secret():
    config = ProviderConfig(
        name="aws",
        kind="bedrock",
        base_url="u",
        api_key="k-1234",
        aws=AwsCredentials("AKID", "s-1234", "t-1234"),
    )
    assert "1234" not in repr(config)
    assert config.secrets() == ("k-1234", "u", "s-1234", "t-1234")


def test_stored_aws_secret_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv("GW_T_AWS_SECRET", "from-env")
    provider = Provider.objects.create(
        name="aws",
        kind="bedrock",
        region="us-west-2",
        aws_access_key_id="AKIDSTORED",
        aws_secret_access_key_env="GW_T_AWS_SECRET",
        aws_secret_access_key_encrypted=encrypt_secret("stored-secret"),
    )
    Deployment.objects.create(
        model=PublicModel.objects.create(name="m"), provider=provider, upstream_model="x"
    )

    assert configs()["aws"].aws == AwsCredentials("AKIDSTORED", "stored-secret", None)


def test_aws_credentials_file_gives_the_whole_key_unless_a_secret_is_stored(tmp_path, caplog):
    path = tmp_path / "credentials"
    path.write_text(
        "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = other-secret\n"
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n"
        "aws_session_token = file-token\n"
    )
    provider = Provider.objects.create(
        name="aws", kind="bedrock", region="us-west-2", aws_credentials_file=str(path)
    )
    Deployment.objects.create(
        model=PublicModel.objects.create(name="m"), provider=provider, upstream_model="x"
    )

    assert configs()["aws"].aws == AwsCredentials("AKIDFILE", "file-secret", "file-token")
    assert str(path) in load_catalog().secret_files  # followed as it rotates

    path.write_text("[only]\naws_access_key_id = AKIDONLY\naws_secret_access_key = only-secret\n")
    assert configs()["aws"].aws == AwsCredentials("AKIDONLY", "only-secret", None)

    caplog.clear()
    for broken in ("no section header = here-secret\n", "[default]\naws_access_key_id = AKIDHALF\n"):
        path.write_text(broken)
        assert configs()["aws"].aws is None
    assert "here-secret" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.name == "providers.files"] == [
        f"provider aws: AWS credentials file {path} cannot be parsed: MissingSectionHeaderError",
        f"provider aws: AWS credentials file {path} lacks aws_access_key_id or aws_secret_access_key",
    ]

    Provider.objects.filter(pk=provider.pk).update(
        aws_access_key_id="AKIDSTORED", aws_secret_access_key_encrypted=encrypt_secret("stored-secret")
    )
    assert configs()["aws"].aws == AwsCredentials("AKIDSTORED", "stored-secret", None)
    assert str(path) not in load_catalog().secret_files


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            "{name: p, kind: openai, base_url: 'http://x/v1', region: us-east-1}",
            "providers.0: Value error, 'region' applies only to bedrock providers, not openai.",
        ),
        (
            "{name: p, kind: mock, api_version: '1'}",
            "providers.0: Value error, 'api_version' applies only to azure / anthropic / gemini "
            "providers, not mock.",
        ),
        (
            "{name: p, kind: azure, api_key_env: K}",
            "providers.0: Value error, An Azure OpenAI provider needs a base URL: its endpoint, "
            "https://RESOURCE.openai.azure.com.",
        ),
        (
            "{name: p, kind: anthropic, base_url: 'ftp://x'}",
            "providers.0: Value error, The base URL must start with http:// or https://.",
        ),
        (
            "{name: p, kind: bedrock, api_key_env: K}",
            "providers.0: Value error, A bedrock provider needs an AWS region, e.g. us-east-1.",
        ),
        (
            "{name: p, kind: bedrock, region: us-east-1}",
            "providers.0: Value error, A bedrock provider needs AWS credentials (access key id and "
            "secret access key) or a Bedrock API key.",
        ),
        (
            "{name: p, kind: bedrock, region: us-east-1, aws_access_key_id_env: A}",
            "providers.0: Value error, AWS credentials need both an access key id and a secret access key.",
        ),
        (
            "{name: p, kind: openai, base_url: 'http://x/v1', aws_credentials_file: /run/aws}",
            "providers.0: Value error, 'aws_credentials_file' applies only to bedrock providers, not openai.",
        ),
        (
            "{name: p, kind: bedrock, region: us-east-1, aws_secret_access_key: s}",
            "providers.0.aws_secret_access_key: Extra inputs are not permitted",
        ),
        (
            "{name: p, kind: gemini, api_key_env: 'not a name'}",
            "providers.0.api_key_env: String should match pattern '^([A-Za-z_][A-Za-z0-9_]*)?$'",
        ),
    ],
)
def test_kind_specific_settings_are_checked(tmp_path, provider, expected):
    assert refused(tmp_path, f"providers: [{provider}]\n") == expected


# --- admin -----------------------------------------------------------------------------------


def form(kind: str, **extra: str) -> dict[str, str]:
    fields = {
        "name": "p1",
        "kind": kind,
        "base_url": "",
        "api_key": "",
        "api_key_env": "",
        "api_version": "",
        "region": "",
        "aws_access_key_id": "",
        "aws_access_key_id_env": "",
        "aws_secret_access_key": "",
        "aws_secret_access_key_env": "",
        "aws_session_token_env": "",
        "timeout_seconds": "",
        "options": "{}",
        "enabled": "on",
    }
    return {**fields, **extra}


def test_admin_bedrock_provider_stores_the_aws_secret_encrypted_and_never_renders_it(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"),
        form(
            "bedrock",
            region="eu-central-1",
            aws_access_key_id="AKIDADMIN",
            aws_secret_access_key="wJalr-SECRET",
        ),
    )

    assert response.status_code == 302
    provider = Provider.objects.get()
    assert decrypt_secret(provider.aws_secret_access_key_encrypted) == "wJalr-SECRET"
    page = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert "wJalr-SECRET" not in page
    assert provider.aws_secret_access_key_encrypted not in page

    # Saving again with the field empty keeps the stored secret; "remove" clears it and then
    # the provider lacks credentials.
    change = reverse("admin:providers_provider_change", args=[provider.pk])
    assert (
        admin_client.post(
            change, form("bedrock", region="eu-central-1", aws_access_key_id="AKIDADMIN")
        ).status_code
        == 302
    )
    provider.refresh_from_db()
    assert decrypt_secret(provider.aws_secret_access_key_encrypted) == "wJalr-SECRET"
    cleared = admin_client.post(
        change,
        form(
            "bedrock", region="eu-central-1", aws_access_key_id="AKIDADMIN", clear_aws_secret_access_key="on"
        ),
    )
    assert cleared.status_code == 200
    assert "AWS credentials need both an access key id and a secret access key." in cleared.content.decode()


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        ("bedrock", {"api_key_env": "K"}, "A bedrock provider needs an AWS region, e.g. us-east-1."),
        ("openai", {"base_url": "http://x/v1", "region": "us-east-1"}, "applies only to bedrock providers"),
        ("azure", {"api_key_env": "K"}, "An Azure OpenAI provider needs a base URL"),
        ("mock", {"aws_session_token_env": "T"}, "applies only to bedrock providers, not mock"),
    ],
)
def test_admin_refuses_settings_that_do_not_fit_the_kind(admin_client, kind, extra, message):
    response = admin_client.post(reverse("admin:providers_provider_add"), form(kind, **extra))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Provider.objects.exists()


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_admin_accepts_anthropic_and_gemini_with_defaults(admin_client, kind):
    response = admin_client.post(reverse("admin:providers_provider_add"), form(kind, api_key="k-123456"))

    assert response.status_code == 302
    provider = Provider.objects.get()
    assert (provider.kind, provider.base_url, provider.api_version) == (kind, "", "")


def test_the_mock_chunk_delay_comes_from_its_options_else_the_setting(settings):
    settings.GATEWAY_MOCK_CHUNK_DELAY_MS = 7.5
    Provider.objects.create(name="plain-mock", kind="mock")
    Provider.objects.create(name="quick-mock", kind="mock", options={"chunk_delay_ms": 0})
    Provider.objects.create(name="upstream", kind="openai", base_url="http://127.0.0.1:9/v1")
    PublicModel.objects.create(name="m")
    for provider in Provider.objects.all():
        Deployment.objects.create(
            model=PublicModel.objects.get(), provider=provider, upstream_model=provider.name, free=True
        )
    delays = {d.provider.name: d.provider.chunk_delay_ms for d in load_catalog().models["m"].deployments}
    assert delays == {"plain-mock": 7.5, "quick-mock": 0.0, "upstream": None}


def test_admin_accepts_a_bedrock_provider_with_only_a_credentials_file(admin_client):
    added = admin_client.post(
        reverse("admin:providers_provider_add"),
        form("bedrock", region="eu-central-1", aws_credentials_file="/run/secrets/aws/credentials"),
    )
    assert added.status_code == 302
    assert list(Provider.objects.values_list("kind", "aws_credentials_file", "aws_access_key_id")) == [
        ("bedrock", "/run/secrets/aws/credentials", "")
    ]
    refused = admin_client.post(
        reverse("admin:providers_provider_add"),
        form("mock", name="p2", aws_credentials_file="/run/secrets/aws/credentials"),
    )
    assert refused.status_code == 200
    assert "applies only to bedrock providers, not mock" in refused.content.decode()
