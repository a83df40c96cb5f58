"""The operator's provider key never reaches a client through a relayed upstream error, end to
end through Daphne, for every provider kind: each fake upstream echoes the key it was sent
(``{key}``) in every field of its error answers, of its mid-stream error events and in its retry
headers, on chat completions, streamed chat completions and embeddings. The key looks like no
known key format, so only the gateway's knowledge of the configured value finds it. Every byte
the client receives (status line aside: headers and body) is checked."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.anthropic_upstream import AnthropicError, AnthropicReply, FakeAnthropicUpstream
from tests.fakes.azure_upstream import AzureError, FakeAzureUpstream
from tests.fakes.bedrock_upstream import BedrockError, BedrockReply, FakeBedrockUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiError, GeminiReply
from tests.fakes.openai_upstream import ErrorReply, FakeOpenAIUpstream, Reply
from tests.fakes.server import KEY_ECHO, FakeServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The operator's key: random, and matching none of the redactor's key formats.
OPERATOR_KEY = "opk" + secrets.token_hex(12)
ECHO = f"rejected {KEY_ECHO} (Authorization: Bearer {KEY_ECHO}) for jo@example.com"
KEY_ENV = "GW_E2E_REDACTION_KEY"


@dataclass
class Edge:
    gateway: GatewayProcess
    http: httpx.Client

    def call(self, path: str, body: dict[str, object]) -> tuple[int, bytes]:
        """The status, and every byte received: the headers, then the raw body."""
        with self.http.stream("POST", path, json=body) as response:
            raw = b"".join(response.iter_raw())
            head = b"".join(f"{k}: {v}\n".encode() for k, v in response.headers.items())
        return response.status_code, head + b"\n" + raw

    def chat(self, *, stream: bool = False) -> tuple[int, bytes]:
        body: dict[str, object] = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        return self.call("/v1/chat/completions", {**body, "stream": True} if stream else body)

    def embed(self) -> tuple[int, bytes]:
        return self.call("/v1/embeddings", {"model": "embed", "input": "hi"})


@pytest.fixture
def edge(gateway_factory, configure, make_key) -> Iterator[Callable[..., Edge]]:
    """``edge(provider_yaml, chat=..., embed=..., env=...)``: the provider ``vendor`` serving the
    models "chat" (and "embed") at list prices, a key for tenant acme, a gateway."""
    clients: list[httpx.Client] = []

    def start(provider_yaml: str, *, chat: str, embed: str | None, env: dict[str, str] | None = None) -> Edge:
        models = [("chat", chat)] + ([("embed", embed)] if embed else [])
        configure(
            "providers:\n"
            + provider_yaml
            + "\nmodels:\n"
            + "".join(
                f'  - name: {name}\n    deployments:\n      - provider: vendor\n        model: "{upstream}"\n'
                '        input_per_million: "1"\n        output_per_million: "2"\n'
                for name, upstream in models
            )
        )
        key = make_key("acme")
        gateway = gateway_factory(**(env or {KEY_ENV: OPERATOR_KEY}))
        http = httpx.Client(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
        )
        clients.append(http)
        return Edge(gateway=gateway, http=http)

    yield start
    for client in clients:
        client.close()


def keyed(kind: str, base_url: str) -> str:
    """The provider ``vendor`` of ``kind``, its key the operator's (from KEY_ENV)."""
    return f'  - {{name: vendor, kind: {kind}, base_url: "{base_url}", api_key_env: {KEY_ENV}}}'


@pytest.fixture
def serve() -> Iterator[Callable[[FakeServer[Any]], Any]]:
    """``serve(fake)`` starts a fake upstream, stopped after the test."""
    started: list[FakeServer[Any]] = []

    def start(fake: FakeServer[Any]) -> Any:
        started.append(fake.start())
        return fake

    yield start
    for fake in started:
        fake.stop()


def hidden(received: tuple[int, bytes], *, status: int) -> dict[str, object]:
    """The key is in no byte; the answer has ``status``; returns the error object (for a stream,
    its error event's)."""
    code, raw = received
    assert OPERATOR_KEY.encode() not in raw
    assert code == status
    body = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else raw
    if b"data: " in body:
        (event,) = [line for line in body.split(b"\n") if line.startswith(b'data: {"error"')]
        body = event.removeprefix(b"data: ")
    error = orjson.loads(body)["error"]
    assert isinstance(error, dict)
    return error


def assert_no_leak_in_log(edge: Edge) -> None:
    assert OPERATOR_KEY not in edge.gateway.log()


def test_openai(edge, serve):
    fake = serve(FakeOpenAIUpstream())
    gateway = edge(
        keyed("openai", fake.base_url),
        chat="gpt-4o",
        embed="text-embedding-3-small",
    )
    every = {"type": ECHO, "param": ECHO, "code": ECHO}
    fake.enqueue(ErrorReply(400, ECHO, **every, headers={"retry-after": KEY_ECHO}))
    error = hidden(gateway.chat(), status=400)
    assert error["message"] == error["type"] == error["param"] == error["code"]
    assert str(error["message"]).startswith(
        "rejected [redacted] (Authorization: Bearer [redacted]) for [EMAIL:"
    )

    fake.enqueue(ErrorReply(429, ECHO, **every, headers={"retry-after": KEY_ECHO, "retry-after-ms": "250"}))
    status, raw = gateway.chat()
    hidden((status, raw), status=429)
    assert b"retry-after-ms: 250\n" in raw and b"retry-after: " not in raw

    fake.enqueue(ErrorReply(500, ECHO, **every))
    assert hidden(gateway.chat(), status=502)["code"] == "upstream_error"

    fake.enqueue(ErrorReply(400, ECHO, **every))
    hidden(gateway.chat(stream=True), status=400)

    fake.enqueue(Reply(content="one two", fail_after=1, failure="error", error={"message": ECHO, **every}))
    error = hidden(gateway.chat(stream=True), status=200)
    assert str(error["param"]).startswith("rejected [redacted]")

    fake.embeddings_reply = ErrorReply(400, ECHO, **every)
    assert str(hidden(gateway.embed(), status=400)["code"]).startswith("rejected [redacted]")
    assert len(fake.requests) == 6
    assert_no_leak_in_log(gateway)


def test_a_configured_key_of_another_provider_is_caught_by_its_value(edge, serve, configure):
    """The serving adapter knows only its own credentials; the edge knows every configured one."""
    fake = serve(FakeOpenAIUpstream())
    configure(  # the other provider serves a model, so its key is in the snapshot
        f"""
providers:
  - {{name: other, kind: anthropic, base_url: "{fake.base_url}", api_key_env: {KEY_ENV}}}
models:
  - name: other-chat
    deployments:
      - {{provider: other, model: claude-sonnet-4-5, input_per_million: "3", output_per_million: "15"}}
"""
    )
    gateway = edge(
        f'  - {{name: vendor, kind: openai, base_url: "{fake.base_url}", api_key_env: GW_E2E_OWN_KEY}}',
        chat="gpt-4o",
        embed=None,
        env={KEY_ENV: OPERATOR_KEY, "GW_E2E_OWN_KEY": "own-key-" + secrets.token_hex(8)},
    )
    fake.enqueue(ErrorReply(400, f"leaked {OPERATOR_KEY}", param=OPERATOR_KEY))
    error = hidden(gateway.chat(), status=400)
    assert str(error["message"]).startswith("leaked [PROVIDER_KEY:")
    assert str(error["param"]).startswith("[PROVIDER_KEY:")

    fake.enqueue(Reply(content="one two", fail_after=1, failure="error", error={"message": OPERATOR_KEY}))
    assert str(hidden(gateway.chat(stream=True), status=200)["message"]).startswith("[PROVIDER_KEY:")


def test_azure(edge, serve):
    fake = serve(FakeAzureUpstream(api_key=OPERATOR_KEY))
    gateway = edge(
        keyed("azure", fake.base_url),
        chat="gpt-4o",
        embed="text-embedding-3-small",
    )
    body = {"error": {"message": ECHO, "type": ECHO, "param": ECHO, "code": ECHO, "innererror": ECHO}}
    fake.enqueue(AzureError(400, body))
    assert str(hidden(gateway.chat(), status=400)["type"]).startswith("rejected [redacted]")
    fake.enqueue(AzureError(429, body, headers={"retry-after": KEY_ECHO}))
    hidden(gateway.chat(), status=429)
    fake.enqueue(AzureError(503, body))
    hidden(gateway.chat(stream=True), status=503)
    fake.enqueue(Reply(content="one two", fail_after=1, failure="error", error=body["error"]))
    assert str(hidden(gateway.chat(stream=True), status=200)["code"]).startswith("rejected [redacted]")
    fake.embeddings_reply = AzureError(400, body)
    hidden(gateway.embed(), status=400)
    assert_no_leak_in_log(gateway)


def test_anthropic(edge, serve):
    fake = serve(FakeAnthropicUpstream(api_key=OPERATOR_KEY))
    gateway = edge(
        keyed("anthropic", fake.base_url),
        chat="claude-sonnet-4-5",
        embed=None,
    )
    fake.enqueue(AnthropicError(400, ECHO, ECHO))
    assert str(hidden(gateway.chat(), status=400)["message"]).startswith("rejected [redacted]")
    fake.enqueue(AnthropicError(529, "overloaded_error", ECHO, headers={"retry-after": KEY_ECHO}))
    hidden(gateway.chat(), status=503)
    fake.enqueue(AnthropicError(429, "rate_limit_error", ECHO))
    hidden(gateway.chat(stream=True), status=429)
    fake.enqueue(AnthropicReply(text="one two", fail_after=1, error_message=ECHO))
    error = hidden(gateway.chat(stream=True), status=200)
    assert str(error["message"]).startswith(
        "The upstream provider 'vendor' failed mid-stream: rejected [redacted]"
    )
    assert_no_leak_in_log(gateway)


def test_gemini(edge, serve):
    fake = serve(FakeGeminiUpstream(api_key=OPERATOR_KEY))
    gateway = edge(
        keyed("gemini", fake.base_url),
        chat="gemini-2.5-flash",
        embed="gemini-embedding-001",
    )
    fake.enqueue(GeminiError(400, ECHO, ECHO))
    error = hidden(gateway.chat(), status=400)
    assert str(error["code"]).startswith("rejected [redacted]")
    fake.enqueue(GeminiError(429, ECHO, ECHO, [{"retryDelay": "2s"}]))
    status, raw = gateway.chat(stream=True)
    hidden((status, raw), status=429)
    assert b"retry-after: 2\n" in raw
    fake.enqueue(GeminiReply(text="one two", fail_after=1, error_message=ECHO))
    hidden(gateway.chat(stream=True), status=200)
    fake.enqueue(GeminiError(400, ECHO, ECHO))
    hidden(gateway.embed(), status=400)
    assert_no_leak_in_log(gateway)


def test_bedrock(edge, serve):
    fake = serve(FakeBedrockUpstream(access_key="AKIDREDACT", secret_key=OPERATOR_KEY))
    gateway = edge(
        f'  - {{name: vendor, kind: bedrock, base_url: "{fake.base_url}", region: us-east-1, '
        f"aws_access_key_id_env: GW_E2E_AWS_ID, aws_secret_access_key_env: {KEY_ENV}}}",
        chat="anthropic.claude-sonnet-4-5-20250929-v1:0",
        embed="amazon.titan-embed-text-v2:0",
        env={KEY_ENV: OPERATOR_KEY, "GW_E2E_AWS_ID": "AKIDREDACT"},
    )
    fake.enqueue(BedrockError(400, f"Bad{KEY_ECHO}", ECHO))
    assert hidden(gateway.chat(), status=400)["code"] == "Bad[redacted]"
    fake.enqueue(BedrockError(408, "ModelTimeoutException", ECHO))
    hidden(gateway.chat(), status=504)
    fake.enqueue(BedrockError(503, "ServiceUnavailableException", ECHO))
    hidden(gateway.chat(stream=True), status=503)
    fake.enqueue(BedrockReply(text="one two", exception_after=1, exception_message=ECHO))
    hidden(gateway.chat(stream=True), status=200)
    fake.enqueue(BedrockError(400, "ValidationException", ECHO))
    hidden(gateway.embed(), status=400)
    assert_no_leak_in_log(gateway)
