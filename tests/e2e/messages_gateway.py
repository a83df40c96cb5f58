"""A gateway (Daphne subprocess) serving the Messages API in front of fake upstreams, with the
official ``anthropic`` SDK pointed at it; what the SDK sent is kept, so tests compare it with
what the upstream received."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import anthropic
import httpx
import httpx2

from tests.conftest import GatewayProcess, IssuedKey
from tests.e2e.vendor_gateway import VendorStarter

PRICE_INPUT = Decimal("3")
PRICE_OUTPUT = Decimal("15")
PRICE_CACHED = Decimal("0.3")
PRICE_CACHE_WRITE = Decimal("3.75")

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def cost(*, uncached: int, output: int, cache_read: int = 0, cache_write: int = 0) -> Decimal:
    """A deployment priced as in ``deployment_yaml``, in Anthropic's usage terms."""
    return (
        Decimal(uncached) * PRICE_INPUT
        + Decimal(cache_read) * PRICE_CACHED
        + Decimal(cache_write) * PRICE_CACHE_WRITE
        + Decimal(output) * PRICE_OUTPUT
    ) / Decimal(1_000_000)


def deployment_yaml(*, provider: str, model: str) -> str:
    """A deployment list item at the prices above (cache writes need ``prices_yaml`` too)."""
    return f"""      - provider: {provider}
        model: "{model}"
        input_per_million: "{PRICE_INPUT}"
        output_per_million: "{PRICE_OUTPUT}"
        cached_input_per_million: "{PRICE_CACHED}"
"""


ANTHROPIC_KEY = "sk-ant-e2e-SECRET-0123456789"
ANTHROPIC_ENV = {"GW_E2E_ANTHROPIC_KEY": ANTHROPIC_KEY}  # the gateway's environment for it


def anthropic_config(
    base_url: str, *, model: str, upstream_model: str, extra: str = "", timeout_seconds: float = 30
) -> str:
    """A provider ``anthropic`` (its key from ``ANTHROPIC_ENV``) serving ``model``, then ``extra``."""
    return f"""
providers:
  - name: anthropic
    kind: anthropic
    base_url: {base_url}
    api_key_env: GW_E2E_ANTHROPIC_KEY
    timeout_seconds: {timeout_seconds}
models:
  - name: {model}
    deployments:
{deployment_yaml(provider="anthropic", model=upstream_model)}
{extra}"""


def prices_yaml(*, provider: str, model: str) -> str:
    """A price version in force since 2025 with the cache-write price."""
    return f"""prices:
  - provider: {provider}
    model: "{model}"
    effective_from: 2025-01-01
    input_per_million: "{PRICE_INPUT}"
    output_per_million: "{PRICE_OUTPUT}"
    cached_input_per_million: "{PRICE_CACHED}"
    cache_write_per_million: "{PRICE_CACHE_WRITE}"
"""


def tool_turns(
    question: str, answer: anthropic.types.Message, *blocks: dict[str, object]
) -> list[dict[str, object]]:
    """A conversation after a tool call: the question, the assistant's answer as the SDK returned
    it (echoed back block by block), and a user turn of ``blocks`` (tool results and text)."""
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in answer.content]},
        {"role": "user", "content": list(blocks)},
    ]


def stream_event_names(body: bytes) -> list[str]:
    return [line[7:] for line in body.decode().split("\n") if line.startswith("event: ")]


def event_names(*blocks: int, ping: bool = True) -> list[str]:
    """The SSE event names of a streamed message whose content blocks carry these numbers of
    deltas, in order."""
    names = ["message_start", *(["ping"] if ping else [])]
    for deltas in blocks:
        names += ["content_block_start", *["content_block_delta"] * deltas, "content_block_stop"]
    return [*names, "message_delta", "message_stop"]


@dataclass
class Sent:
    """The requests the SDK sent (its own bytes and headers), in order."""

    requests: list[httpx2.Request] = field(default_factory=list)

    def hook(self, request: httpx2.Request) -> None:
        request.read()
        self.requests.append(request)

    @property
    def last(self) -> httpx2.Request:
        return self.requests[-1]


@dataclass
class MessagesGateway:
    gateway: GatewayProcess
    key: IssuedKey
    client: anthropic.Anthropic  # the key as x-api-key, as the SDK sends an API key; no retries
    http: httpx.Client  # raw, authenticated with the key as a bearer token (Claude Code's way)
    sent: Sent

    def sdk(self, **options: object) -> anthropic.Anthropic:
        """Another SDK client on the gateway (e.g. ``auth_token=`` or another key)."""
        return anthropic.Anthropic(base_url=self.gateway.base_url, max_retries=0, timeout=30, **options)  # type: ignore[arg-type]


class MessagesStarter(VendorStarter):
    """``starter(config_yaml, env=..., key_models=None)``: apply the configuration, issue a key
    for tenant "acme", start a gateway with ``env``; ``close`` closes every client."""

    def __call__(  # type: ignore[override]
        self, config_yaml: str, *, env: dict[str, str], key_models: list[str] | None = None
    ) -> MessagesGateway:
        self._configure(config_yaml)
        key = self._make_key("acme", models=key_models)
        gateway = self._gateway_factory(**env)
        sent = Sent()
        client = anthropic.Anthropic(
            base_url=gateway.base_url,
            api_key=key.raw,
            max_retries=0,
            timeout=30,
            http_client=httpx2.Client(event_hooks={"request": [sent.hook]}),
        )
        http = httpx.Client(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
        )
        self._clients += [client, http]  # type: ignore[list-item]
        return MessagesGateway(gateway=gateway, key=key, client=client, http=http, sent=sent)
