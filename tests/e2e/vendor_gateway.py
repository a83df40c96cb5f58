"""A gateway (Daphne subprocess) in front of one fake vendor upstream, for the per-provider
end-to-end tests: the provider and one public model with prices, a fresh key, an SDK client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai

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


@dataclass
class VendorGateway:
    gateway: GatewayProcess
    key: IssuedKey
    client: openai.OpenAI
    http: httpx.Client

    def close(self) -> None:
        self.client.close()
        self.http.close()


def start_vendor_gateway(
    *,
    provider_yaml: str,
    model: str,
    upstream_model: str,
    gateway_factory: Callable[..., GatewayProcess],
    configure: Callable[[str], None],
    make_key: Callable[..., IssuedKey],
    env: dict[str, str],
    extra_models: str = "",
) -> VendorGateway:
    """``provider_yaml`` is one ``providers`` list item named ``vendor``."""
    configure(
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
{extra_models}
"""
    )
    key = make_key("acme")
    gateway = gateway_factory(**env)
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
    http = httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30)
    return VendorGateway(gateway=gateway, key=key, client=client, http=http)


class VendorStarter:
    """Starts vendor gateways for one test and closes their clients afterwards."""

    def __init__(
        self,
        *,
        gateway_factory: Callable[..., GatewayProcess],
        configure: Callable[[str], None],
        make_key: Callable[..., IssuedKey],
    ) -> None:
        self._fixtures = {"gateway_factory": gateway_factory, "configure": configure, "make_key": make_key}
        self._started: list[VendorGateway] = []

    def __call__(
        self,
        *,
        provider_yaml: str,
        model: str,
        upstream_model: str,
        env: dict[str, str],
        extra_models: str = "",
    ) -> VendorGateway:
        started = start_vendor_gateway(
            provider_yaml=provider_yaml,
            model=model,
            upstream_model=upstream_model,
            env=env,
            extra_models=extra_models,
            **self._fixtures,  # type: ignore[arg-type]
        )
        self._started.append(started)
        return started

    def close(self) -> None:
        for started in self._started:
            started.close()
