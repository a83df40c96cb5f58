"""The ``bedrock`` kind: AWS Bedrock's Converse API in one region, signed with AWS credentials
(stored, from environment variables, or from a shared-credentials file followed as it rotates) or
authorised with a Bedrock API key."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, ProviderSettings, SettingsSpec, TokenRules
from providers.types import ANTHROPIC_MESSAGES
from providers.vendors.bedrock.adapter import BedrockAdapter
from providers.vendors.bedrock.embeddings import embed


def credential_problems(settings: ProviderSettings) -> list[tuple[str, str]]:
    """AWS credentials come whole (access key id and secret access key, or a credentials file
    holding both), or a Bedrock API key stands in for them."""
    problems: list[tuple[str, str]] = []
    whole = bool(settings.aws_credentials_file)
    has_id = whole or bool(settings.aws_access_key_id or settings.aws_access_key_id_env)
    has_secret = whole or bool(settings.has_aws_secret_access_key or settings.aws_secret_access_key_env)
    has_bearer = bool(settings.has_api_key or settings.api_key_env)
    if has_id != has_secret:
        missing = "aws_secret_access_key_env" if has_id else "aws_access_key_id_env"
        problems.append((missing, "AWS credentials need both an access key id and a secret access key."))
    elif not has_id and not has_bearer:
        problems.append(
            (
                "aws_access_key_id_env",
                "A bedrock provider needs AWS credentials (access key id and secret access key) "
                "or a Bedrock API key.",
            )
        )
    return problems


BEDROCK = ProviderKind(
    name="bedrock",
    label="AWS Bedrock (Converse)",
    settings=SettingsSpec(
        takes=(
            "region",
            "aws_access_key_id",
            "aws_access_key_id_env",
            "aws_secret_access_key_env",
            "aws_session_token_env",
            "aws_secret_access_key",
            "aws_credentials_file",
        ),
        requires=(("region", "A bedrock provider needs an AWS region, e.g. us-east-1."),),
        check=credential_problems,
        default_base_url="https://bedrock-runtime.{region}.amazonaws.com",
    ),
    adapter=BedrockAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=True, reasoning_in_output=True),
    gen_ai_provider="aws.bedrock",
    native_dialects=frozenset({ANTHROPIC_MESSAGES}),
    token_counter=None,
)
