"""A gateway (Daphne subprocess) in front of one fake vendor upstream, for the per-provider
end-to-end tests: the provider and one public model with prices, a fresh key, an SDK client;
and the checks those tests share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from tests.conftest import GatewayProcess, IssuedKey

PRICE_INPUT = Decimal("3")
PRICE_OUTPUT = Decimal("15")
PRICE_CACHED = Decimal("0.3")


def cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    return (
        Decimal(prompt - cached) * PRICE_INPUT
        + Decimal(cached) * PRICE_CACHED
        + Decimal(completion) * PRICE_OUTPUT
    ) / Decimal(1_000_000)


class VendorStarter:
    """``starter(provider_yaml=..., model=..., upstream_model=..., env=...)``: configure the
    provider (``provider_yaml`` is one ``providers`` list item named ``vendor``) and ``model``
    served by it at the prices above, issue a key for tenant "acme", start a gateway with
    ``env``, and return an SDK client on it (no retries); ``close`` closes every client."""

    def __init__(
        self,
        *,
        gateway_factory: Callable[..., GatewayProcess],
        configure: Callable[[str], None],
        make_key: Callable[..., IssuedKey],
    ) -> None:
        self._gateway_factory = gateway_factory
        self._configure = configure
        self._make_key = make_key
        self._clients: list[openai.OpenAI] = []

    def __call__(
        self, *, provider_yaml: str, model: str, upstream_model: str, env: dict[str, str]
    ) -> openai.OpenAI:
        self._configure(
            f"""
providers:
{provider_yaml}
models:
  - name: {model}
    deployments:
      - provider: vendor
        model: "{upstream_model}"
        input_per_million: "{PRICE_INPUT}"
        output_per_million: "{PRICE_OUTPUT}"
        cached_input_per_million: "{PRICE_CACHED}"
"""
        )
        key = self._make_key("acme")
        gateway = self._gateway_factory(**env)
        client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


def streamed_text(chunks: Iterable[ChatCompletionChunk]) -> str:
    """The content deltas of a streamed answer, joined."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def streamed_tool_calls(chunks: Iterable[ChatCompletionChunk]) -> list[ChoiceDeltaToolCall]:
    """Every tool-call delta of a streamed answer, in order."""
    return [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]


def assert_credentials_rejected(ask: Callable[[], object], *, secret: str) -> None:
    """The upstream refuses the gateway's credentials: the client sees a 502
    ``upstream_auth_failed`` that does not show the credential."""
    with pytest.raises(openai.APIStatusError) as auth:
        ask()
    assert (auth.value.status_code, auth.value.body["code"]) == (502, "upstream_auth_failed")
    assert secret not in json.dumps(auth.value.body)
