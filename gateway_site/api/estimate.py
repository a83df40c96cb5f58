"""The estimate stage: what a request will probably use (tokens, for the rate limits) and
what it can cost at most (for hard quotas), before anything is sent upstream.


* Tokens reserved: the prompt counted with the gateway's offline tokenizer
  (``providers.tokens``) plus ``max_completion_tokens`` / ``max_tokens`` (or
  ``GATEWAY_DEFAULT_MAX_TOKENS`` when the request states neither), times ``n``. Replaced by the
  actual usage when the request ends.
* Cost reserved: an upper bound, so that with ``max_tokens`` stated the spend of a period never
  passes a hard limit: the prompt's UTF-8 bytes (every token of a byte-level tokenizer is at
  least one byte) plus the chat framing, 1,500 tokens per image, the JSON of tools and other
  parts, plus the completion allowance, at the highest prices of the model's deployments."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import orjson
from django.conf import settings

from accounting.pricing import PriceTable, PriceVersion, cost_usd
from gateway_site.api.parse.chat import ChatRequest, JsonObject, message_texts
from providers.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, count_message_tokens, count_tokens
from providers.types import DeploymentConfig, ModelRoute
from quotas.authentication.registry import KeyContext
from routing.strategies import COST_OPTIMIZED

IMAGE_TOKEN_BOUND = 1500


_TOP_LEVEL_PROMPT_FIELDS = ("tools", "functions", "response_format")


@dataclass(frozen=True, slots=True)
class Estimate:
    prompt_tokens: int  # the tokenizer's count, for rate limits
    prompt_bound: int  # never below the true count, for cost reservations
    completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _json_bytes(value: object) -> int:
    return len(orjson.dumps(value))


def _part_bound(part: object) -> int:
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return len(part["text"].encode())
    if isinstance(part, dict) and part.get("type") == "image_url":
        return IMAGE_TOKEN_BOUND
    return _json_bytes(part)


def _message_bound(message: object) -> int:
    if not isinstance(message, dict):
        return _json_bytes(message)
    content = message.get("content")
    total = MESSAGE_OVERHEAD
    if isinstance(content, str):
        total += len(content.encode())
    elif isinstance(content, list):
        total += sum(_part_bound(part) for part in content)
    for name in ("name", "tool_call_id"):
        if isinstance(message.get(name), str):
            total += len(message[name].encode())
    if message.get("tool_calls") is not None:
        total += _json_bytes(message["tool_calls"])
    return total


def estimate_chat(raw: JsonObject, *, default_max_tokens: int) -> Estimate:
    extras = [raw[name] for name in _TOP_LEVEL_PROMPT_FIELDS if raw.get(name) is not None]
    messages = raw.get("messages")
    bound = REPLY_PRIMING + sum(_message_bound(m) for m in (messages if isinstance(messages, list) else []))
    bound += sum(_json_bytes(extra) for extra in extras)
    prompt = count_message_tokens(message_texts(raw)) + sum(
        count_tokens(orjson.dumps(e).decode()) for e in extras
    )
    stated = raw.get("max_completion_tokens", raw.get("max_tokens"))
    per_choice = stated if isinstance(stated, int) and not isinstance(stated, bool) else default_max_tokens
    choices = raw.get("n")
    count = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 0 else 1
    return Estimate(
        prompt_tokens=prompt,
        prompt_bound=bound,
        completion_tokens=per_choice * count,
    )


# What a request whose key has no limits reserves: nothing is counted for it.
NO_ESTIMATE = Estimate(prompt_tokens=0, prompt_bound=0, completion_tokens=0)


def estimate_embeddings(raw: JsonObject) -> Estimate:
    """An embeddings request: its input counted with the offline tokenizer (token arrays by
    their length), bounded for cost by the UTF-8 bytes of each text; no completion."""
    value = raw.get("input")
    items = value if isinstance(value, list) else [value]
    prompt = bound = 0
    for item in items:
        if isinstance(item, str):
            prompt += count_tokens(item)
            bound += len(item.encode())
        elif isinstance(item, list):  # one input given as token ids
            prompt += len(item)
            bound += len(item)
        elif isinstance(item, int):  # the whole input is one array of token ids
            prompt += 1
            bound += 1
    return Estimate(prompt_tokens=prompt, prompt_bound=bound, completion_tokens=0)


def max_cost(
    deployments: Sequence[DeploymentConfig], estimate: Estimate, prices: PriceTable | None = None
) -> Decimal:
    """The most the request can cost on any deployment the router may try (its model's and its
    fallback models'), at each one's price version in force now, or its own prices."""
    now = time.time()
    costs = []
    for d in deployments:
        version = price_in_force(prices, d, now)
        costs.append(
            cost_usd(
                prompt_tokens=estimate.prompt_bound,
                completion_tokens=estimate.completion_tokens,
                cached_tokens=0,
                input_per_million=version.input_per_million,
                output_per_million=version.output_per_million,
                cached_input_per_million=None,
                # cache writes may cost more than input: bound the prompt at the dearer price
                cache_write_tokens=estimate.prompt_bound if _writes_dearer(version) else 0,
                cache_write_per_million=version.cache_write_per_million,
            )
        )
    return max(costs)


def _writes_dearer(version: PriceVersion) -> bool:
    write = version.cache_write_per_million
    return write is not None and write > version.input_per_million


def estimate_for(chat: ChatRequest, *, key: KeyContext, route: ModelRoute) -> Estimate:
    """The request's estimate, counted once and only when read: by the key's limits, or by a
    ``cost_optimized`` route ranking its deployments."""
    if key.limits.empty and route.strategy != COST_OPTIMIZED:
        return NO_ESTIMATE
    estimate = estimate_chat(chat.raw, default_max_tokens=settings.GATEWAY_DEFAULT_MAX_TOKENS)
    if chat.extra_prompt_bytes:
        estimate = replace(estimate, prompt_bound=estimate.prompt_bound + chat.extra_prompt_bytes)
    return estimate


def price_in_force(table: PriceTable | None, deployment: DeploymentConfig, moment: float) -> PriceVersion:
    """The deployment's price version in force at ``moment``, else its own prices (``id`` None)."""
    version = table.at(deployment.id, moment) if table is not None else None
    return version or PriceVersion(
        id=None,
        input_per_million=deployment.prices.input_per_million,
        output_per_million=deployment.prices.output_per_million,
        cached_input_per_million=deployment.prices.cached_input_per_million,
    )
