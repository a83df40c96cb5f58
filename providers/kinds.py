"""What each provider kind needs configured, its defaults, and the one check of a provider's
settings that both the admin form and ``applyconfig`` run. No Django here."""

from __future__ import annotations

from dataclasses import dataclass

OPENAI = "openai"
AZURE = "azure"
ANTHROPIC = "anthropic"
GEMINI = "gemini"
BEDROCK = "bedrock"
MOCK = "mock"

KINDS = (OPENAI, AZURE, ANTHROPIC, GEMINI, BEDROCK, MOCK)

DEFAULT_BASE_URLS = {
    ANTHROPIC: "https://api.anthropic.com",
    GEMINI: "https://generativelanguage.googleapis.com",
}
DEFAULT_API_VERSIONS = {ANTHROPIC: "2023-06-01", GEMINI: "v1beta", AZURE: "2024-10-21"}

# Settings that only make sense for some kinds; setting one for another kind is refused.
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "api_version": (AZURE, ANTHROPIC, GEMINI),
    "region": (BEDROCK,),
    "aws_access_key_id": (BEDROCK,),
    "aws_access_key_id_env": (BEDROCK,),
    "aws_secret_access_key_env": (BEDROCK,),
    "aws_session_token_env": (BEDROCK,),
    "aws_secret_access_key": (BEDROCK,),
}


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """The settings of one provider as entered (admin form or YAML file). ``has_*`` say whether
    a secret is available without revealing it (stored encrypted, or entered now)."""

    kind: str
    base_url: str = ""
    api_version: str = ""
    region: str = ""
    api_key_env: str = ""
    has_api_key: bool = False
    aws_access_key_id: str = ""
    aws_access_key_id_env: str = ""
    aws_secret_access_key_env: str = ""
    aws_session_token_env: str = ""
    has_aws_secret_access_key: bool = False


def default_base_url(kind: str, *, region: str = "") -> str:
    if kind == BEDROCK and region:
        return f"https://bedrock-runtime.{region}.amazonaws.com"
    return DEFAULT_BASE_URLS.get(kind, "")


def default_api_version(kind: str) -> str:
    return DEFAULT_API_VERSIONS.get(kind, "")


def check_settings(settings: ProviderSettings) -> list[tuple[str, str]]:
    """Problems as ``(field, message)`` pairs; empty when the settings are usable."""
    problems = [
        (name, f"'{name}' applies only to {' / '.join(kinds)} providers, not {settings.kind}.")
        for name, kinds in _ONLY_FOR.items()
        if settings.kind not in kinds and _is_set(settings, name)
    ]
    url = settings.base_url
    if url and not url.startswith(("http://", "https://")):
        problems.append(("base_url", "The base URL must start with http:// or https://."))
    if settings.kind == OPENAI and not url:
        problems.append(("base_url", "An OpenAI-compatible provider needs a base URL."))
    if settings.kind == AZURE and not url:
        problems.append(
            (
                "base_url",
                "An Azure OpenAI provider needs a base URL: its endpoint, https://RESOURCE.openai.azure.com.",
            )
        )
    if settings.kind == BEDROCK:
        problems.extend(_bedrock_problems(settings))
    return problems


def _is_set(settings: ProviderSettings, name: str) -> bool:
    if name == "aws_secret_access_key":
        return settings.has_aws_secret_access_key
    return bool(getattr(settings, name))


def _bedrock_problems(settings: ProviderSettings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not settings.region:
        problems.append(("region", "A bedrock provider needs an AWS region, e.g. us-east-1."))
    has_id = bool(settings.aws_access_key_id or settings.aws_access_key_id_env)
    has_secret = bool(settings.has_aws_secret_access_key or settings.aws_secret_access_key_env)
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
