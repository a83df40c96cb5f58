"""Every provider kind is complete, and every per-kind lookup covers exactly the registry's kinds:
a kind added with a part missing, or a lookup kept outside the registry, fails here."""

from __future__ import annotations

import dataclasses
import inspect
import io
import re

import pytest
from django.core.management import call_command
from pydantic import ValidationError

from gateway_site.console.declarative import ProviderSpec
from providers.errors import UnsupportedRequest
from providers.http import create_http_client
from providers.kinds.record import ProviderKind, ProviderSettings, SettingsSpec, TokenRules
from providers.kinds.registry import KINDS, NAMES, adapter_for, embed, kind
from providers.models import Provider
from providers.translation.upstream import Adapter, UpstreamCall
from providers.types import DeploymentConfig, ProviderConfig
from routing.telemetry import GEN_AI_PROVIDER
from tests.fakes.openai_upstream import FakeOpenAIUpstream

SETTING_NAMES = {f.name for f in dataclasses.fields(ProviderSettings)} | {"aws_secret_access_key"}
# Every kind takes these: a kind's spec names only the others.
COMMON_SETTINGS = {"kind", "base_url", "api_key_env", "has_api_key", "has_aws_secret_access_key"}
PARTS = [
    "name",
    "label",
    "settings",
    "adapter",
    "embedder",
    "token_rules",
    "gen_ai_provider",
    "native_dialects",
    "token_counter",
]
ADAPTER_METHODS = sorted(name for name in vars(Adapter) if not name.startswith("_"))


def _adapter_problem(adapter: object) -> bool:
    """The adapter lacks a method of the ``Adapter`` protocol, or has it with another signature
    or not as a coroutine function."""
    for name in ADAPTER_METHODS:
        method = getattr(adapter, name, None)
        wanted = list(inspect.signature(getattr(Adapter, name)).parameters)[1:]
        if not inspect.iscoroutinefunction(method) or list(inspect.signature(method).parameters) != wanted:
            return True
    return False


def _settings_problem(spec: object) -> bool:
    """The spec names a setting that is not one, or a common one; requires one without saying
    why; or has a default that cannot be used (not http(s), or for a setting it does not take)."""
    if not isinstance(spec, SettingsSpec) or not set(spec.takes) <= SETTING_NAMES - COMMON_SETTINGS:
        return True
    required = [name for name, message in spec.requires if name not in SETTING_NAMES or not message]
    url, version = spec.default_base_url, spec.default_api_version
    return bool(
        required
        or (spec.check is not None and not callable(spec.check))
        or (url and not url.startswith(("http://", "https://")))
        or ("{region}" in url and "region" not in spec.takes)
        or (version and "api_version" not in spec.takes)
    )


def _embedder_problem(embedder: object) -> bool:
    """An embedder is None (no embeddings API) or a coroutine function of the call."""
    if embedder is None:
        return False
    return not inspect.iscoroutinefunction(embedder) or len(inspect.signature(embedder).parameters) != 1


def _counter_problem(counter: object, *, dialects: frozenset[str]) -> bool:
    """A token counter is None, or a coroutine function of the call of a kind that speaks a
    client dialect (it counts requests in that dialect)."""
    if counter is None:
        return False
    one_argument = inspect.iscoroutinefunction(counter) and len(inspect.signature(counter).parameters) == 1
    return not (one_argument and dialects)


def _token_rules_problem(rules: object) -> bool:
    if not isinstance(rules, TokenRules):
        return True
    return not all(isinstance(getattr(rules, f.name), bool) for f in dataclasses.fields(TokenRules))


def missing_parts(record: ProviderKind) -> list[str]:
    """The parts of ``record`` that are missing or malformed, in field order; empty when complete."""
    max_length = Provider._meta.get_field("kind").max_length
    checks = {
        "name": not re.fullmatch(r"[a-z][a-z0-9_]*", record.name) or len(record.name) > max_length,
        "label": not (isinstance(record.label, str) and record.label.strip()),
        "settings": _settings_problem(record.settings),
        "adapter": _adapter_problem(record.adapter),
        "embedder": _embedder_problem(record.embedder),
        "token_rules": _token_rules_problem(record.token_rules),
        "gen_ai_provider": not (isinstance(record.gen_ai_provider, str) and record.gen_ai_provider),
        "native_dialects": not isinstance(record.native_dialects, frozenset),
        "token_counter": _counter_problem(record.token_counter, dialects=record.native_dialects),
    }
    return [part for part, missing in checks.items() if missing]


@pytest.mark.parametrize("record", KINDS, ids=NAMES)
def test_every_kind_has_every_part(record):
    assert missing_parts(record) == []


def test_every_field_of_a_kind_is_checked_and_none_has_a_default():
    """The embedder too must be stated: None is a decision (no embeddings API), not a default."""
    fields = dataclasses.fields(ProviderKind)
    assert [f.name for f in fields] == PARTS
    assert [f.name for f in fields if f.default is not dataclasses.MISSING] == []


def test_the_kinds_have_distinct_names_and_telemetry_names():
    assert len(set(NAMES)) == len(KINDS) == 6
    assert len({record.gen_ai_provider for record in KINDS}) == 6


class _OnlyComplete:
    async def complete(self, call: UpstreamCall) -> None:
        return None


class _SyncAdapter:
    def complete(self, call: UpstreamCall) -> None:
        return None

    def open_stream(self, call: UpstreamCall) -> None:
        return None


async def _two_argument_embedder(call: UpstreamCall, extra: int) -> None:
    return None


def _plain_embedder(call: UpstreamCall) -> None:
    return None


def test_an_incomplete_kind_is_reported_part_by_part():
    fake = ProviderKind(
        name="Vertex AI",
        label=" ",
        settings=SettingsSpec(takes=("project",), requires=(("project_id", "A project id."),)),
        adapter=object(),  # type: ignore[arg-type]
        embedder=_plain_embedder,  # type: ignore[arg-type]
        token_rules=None,  # type: ignore[arg-type]
        gen_ai_provider="",
        native_dialects={"messages"},  # type: ignore[arg-type]
        token_counter=_plain_embedder,  # type: ignore[arg-type]
    )
    assert missing_parts(fake) == PARTS


COMPLETE = kind("openai")
NUMERIC_RULES = TokenRules(cache_reads=1, cache_writes=False, reasoning_in_output=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "part"),
    [
        ({"name": "a" * 21}, "name"),
        ({"settings": SettingsSpec(takes=("project",))}, "settings"),
        ({"settings": SettingsSpec(takes=("base_url",))}, "settings"),
        ({"settings": SettingsSpec(requires=(("region", ""),))}, "settings"),
        ({"settings": SettingsSpec(default_base_url="ftp://example.com")}, "settings"),
        ({"settings": SettingsSpec(default_base_url="https://{region}.example.com")}, "settings"),
        ({"settings": SettingsSpec(default_api_version="v1")}, "settings"),
        ({"adapter": _OnlyComplete()}, "adapter"),
        ({"adapter": _SyncAdapter()}, "adapter"),
        ({"embedder": _two_argument_embedder}, "embedder"),
        ({"token_rules": NUMERIC_RULES}, "token_rules"),
        ({"native_dialects": ("messages",)}, "native_dialects"),
        ({"token_counter": _plain_embedder}, "token_counter"),
        ({"token_counter": kind("anthropic").token_counter}, "token_counter"),  # openai speaks no dialect
    ],
)
def test_one_broken_part_is_the_one_reported(change, part):
    assert missing_parts(dataclasses.replace(COMPLETE, **change)) == [part]


def test_anthropic_and_bedrock_speak_the_messages_api_and_only_anthropic_counts_tokens():
    speaking = [(r.name, sorted(r.native_dialects)) for r in KINDS if r.native_dialects]
    assert speaking == [("anthropic", ["messages"]), ("bedrock", ["messages"])]
    assert [r.name for r in KINDS if r.token_counter is not None] == ["anthropic"]


def test_a_kind_without_embeddings_says_so_with_none():
    assert missing_parts(dataclasses.replace(COMPLETE, embedder=None)) == []
    assert [record.name for record in KINDS if record.embedder is None] == ["anthropic"]


# --- every lookup covers exactly the registry's kinds -----------------------------------------


def test_the_admin_choices_are_the_registrys_kinds_with_their_labels():
    assert Provider._meta.get_field("kind").choices == [
        ("openai", "OpenAI-compatible"),
        ("azure", "Azure OpenAI"),
        ("anthropic", "Anthropic Messages API"),
        ("gemini", "Google Gemini API"),
        ("bedrock", "AWS Bedrock (Converse)"),
        ("mock", "Built-in mock"),
    ]
    assert [name for name, _ in Provider._meta.get_field("kind").choices] == list(NAMES)


@pytest.mark.django_db
def test_the_migrations_hold_the_registrys_choices():
    """A kind added to the registry changes the admin choices: its migration must come with it."""
    out = io.StringIO()
    call_command("makemigrations", "providers", "--check", "--dry-run", stdout=out)
    assert out.getvalue() == "No changes detected in app 'providers'\n"


def _kind_errors(value: object) -> list[dict]:
    try:
        ProviderSpec.model_validate({"name": "p", "kind": value})
    except ValidationError as exc:
        return [e for e in exc.errors() if e["loc"] == ("kind",)]
    return []


def test_applyconfig_takes_exactly_the_registrys_kinds():
    assert {name: _kind_errors(name) for name in NAMES} == {name: [] for name in NAMES}
    expected = "Input should be 'openai', 'azure', 'anthropic', 'gemini', 'bedrock' or 'mock'"
    for unknown in ("vertex", "OpenAI", "", 5, None):
        errors = _kind_errors(unknown)
        assert [(e["type"], e["msg"]) for e in errors] == [("literal_error", expected)]


def test_the_adapter_lookup_covers_exactly_the_registrys_kinds():
    assert {name: adapter_for(name) for name in NAMES} == {r.name: r.adapter for r in KINDS}
    with pytest.raises(KeyError):
        adapter_for("vertex")


def test_the_telemetry_map_covers_exactly_the_registrys_kinds():
    assert dict(GEN_AI_PROVIDER) == {
        "openai": "openai",
        "azure": "azure.ai.openai",
        "anthropic": "anthropic",
        "gemini": "gcp.gemini",
        "bedrock": "aws.bedrock",
        "mock": "mock",
    }
    assert list(GEN_AI_PROVIDER) == list(NAMES)


@pytest.mark.parametrize("name", ["anthropic", "vertex"])
async def test_a_kind_without_an_embedder_refuses_embeddings_before_any_call(name):
    upstream = FakeOpenAIUpstream().start()
    http = create_http_client(max_connections=2, timeout_seconds=5, connect_timeout=1)
    provider = ProviderConfig(name="p", kind=name, base_url=upstream.base_url, api_key="k")
    call = UpstreamCall(
        deployment=DeploymentConfig(id=1, provider=provider, upstream_model="m"),
        body={"model": "m", "input": "hi"},
        http=http,
        timeout_seconds=5.0,
        request_id="req_1",
    )
    try:
        with pytest.raises(UnsupportedRequest) as caught:
            await embed(call)
    finally:
        await http.aclose()
        upstream.stop()
    assert caught.value.message == f"The {name} provider has no embeddings API."
    assert caught.value.param == "model"
    assert upstream.requests == []
