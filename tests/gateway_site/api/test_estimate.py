"""The token estimate (for rate limits) and the cost bound (for hard quotas) of a chat request,
pure: the bound is never below what a byte-level tokenizer could count."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson

from gateway_site.api.admit import _lease_ms
from gateway_site.api.estimate import IMAGE_TOKEN_BOUND, estimate_chat, max_cost
from providers.types import DeploymentConfig, ModelRoute, Prices, ProviderConfig


def body(*messages: dict[str, object], **fields: object) -> dict[str, object]:
    return {"model": "m", "messages": list(messages), **fields}


def test_estimate_counts_the_prompt_and_the_stated_completion_allowance():
    estimate = estimate_chat(
        body({"role": "user", "content": "Hello there"}, max_tokens=50), default_max_tokens=1024
    )

    # "Hello there": 2 tokens + 3 framing + 3 reply priming; at most 11 bytes + 6.
    assert (estimate.prompt_tokens, estimate.prompt_bound, estimate.completion_tokens) == (8, 17, 50)
    assert estimate.tokens == 58


def test_max_completion_tokens_wins_and_n_multiplies_it():
    raw = body({"role": "user", "content": "hi"}, max_tokens=50, max_completion_tokens=20, n=3)

    assert estimate_chat(raw, default_max_tokens=1024).completion_tokens == 60


def test_the_default_allowance_when_the_request_states_none():
    assert (
        estimate_chat(body({"role": "user", "content": "hi"}), default_max_tokens=256).completion_tokens
        == 256
    )


def test_the_bound_covers_every_part_of_the_prompt():
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    calls = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]
    raw = body(
        {"role": "system", "content": "Be brief.", "name": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe: ü"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        tools=tools,
    )

    estimate = estimate_chat(raw, default_max_tokens=1)

    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    expected = (
        3
        + (3 + len("Be brief.") + len("sys"))
        + (3 + len("Describe: ü".encode()) + IMAGE_TOKEN_BOUND + len(orjson.dumps(audio)))
        + (3 + len(orjson.dumps(calls)))
        + (3 + len("42") + len("c1"))
        + len(orjson.dumps(tools))
    )
    assert estimate.prompt_bound == expected
    assert estimate.prompt_tokens < estimate.prompt_bound


def deployment(pk: int, input_price: str, output_price: str) -> DeploymentConfig:
    return DeploymentConfig(
        id=pk,
        provider=ProviderConfig(name="p", kind="openai", base_url="http://x"),
        upstream_model="m",
        prices=Prices(Decimal(input_price), Decimal(output_price)),
    )


def test_max_cost_is_the_dearest_deployment():
    route = ModelRoute(
        name="m", created=0, owned_by="x", deployments=(deployment(1, "1", "2"), deployment(2, "3", "1"))
    )
    estimate = estimate_chat(body({"role": "user", "content": "hi"}, max_tokens=46), default_max_tokens=1)

    # 8 prompt tokens at most, 46 completion: max(8 + 92, 24 + 46) micro-dollars.
    assert max_cost(route.deployments, estimate) == Decimal("0.0001")


def test_max_cost_covers_the_fallback_models_deployments():
    # The router's plan for a model with a fallback lists both models' deployments; a dearer
    # fallback must bound the reservation, or a hard quota could be passed after a fallback.
    own = deployment(1, "1", "2")
    fallback = deployment(2, "10", "20")
    estimate = estimate_chat(body({"role": "user", "content": "hi"}, max_tokens=46), default_max_tokens=1)

    # 8 x 10 + 46 x 20 = 1000 micro-dollars, against 100 for the model's own deployment.
    assert max_cost((own,), estimate) == Decimal("0.0001")
    assert max_cost((own, fallback), estimate) == Decimal("0.001")


def test_the_lease_outlives_the_longest_the_request_may_wait(settings):
    settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS = 600
    settings.GATEWAY_LEASE_MARGIN_SECONDS = 60
    quick = DeploymentConfig(
        id=1,
        provider=ProviderConfig(name="p", kind="openai", base_url="http://x", timeout_seconds=30),
        upstream_model="m",
        prices=Prices(Decimal(1), Decimal(1)),
    )
    # the provider's 30 s, or the model's deadline (retries and fallbacks) when longer; plus 60 s
    assert _lease_ms([quick], deadline=None) == 90_000
    lease = _lease_ms([quick], deadline=time.perf_counter() + 300)
    assert 359_000 < lease <= 360_000
    assert _lease_ms([quick, deployment(2, "1", "1")], deadline=None) == 660_000
