"""Admitting a chat request against its key's rate tiers and cost quotas: what it will
probably use (tokens, for the rate limits) and what it can cost at most (for hard quotas),
turned into a plan for the limiter's one round trip.

* Tokens reserved: the prompt counted with the gateway's offline tokenizer
  (``providers.tokens``) plus ``max_completion_tokens`` / ``max_tokens`` (or
  ``GATEWAY_DEFAULT_MAX_TOKENS`` when the request states neither), times ``n``. Replaced by the
  actual usage when the request ends.
* Cost reserved: an upper bound, so that with ``max_tokens`` stated the spend of a period never
  passes a hard limit: the prompt's UTF-8 bytes (every token of a byte-level tokenizer is at
  least one byte) plus the chat framing, 1,500 tokens per image, the JSON of tools and other
  parts, plus the completion allowance, at the highest prices of the model's deployments."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import orjson
from django.conf import settings

from accounting.pricing import PriceTable, PriceVersion, cost_usd
from gateway_site.api.exchange import Exchange, message_texts, price_in_force
from gateway_site.api.parsing import JsonObject
from gateway_site.metrics import observe_refusal, observe_shed, observe_unchecked
from gateway_site.runtime import get_runtime
from providers.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, count_message_tokens, count_tokens
from providers.types import DeploymentConfig
from quotas.admission import Admission, Limiter
from quotas.budget import to_micro
from quotas.errors import Overloaded, QuotaExceeded, RateLimited
from quotas.policy import build_plan
from quotas.registry import KeyContext

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


def _lease_ms(deployments: Sequence[DeploymentConfig], *, deadline: float | None) -> int:
    """How long the reservation outlives a process that dies holding it: the longest the request
    can take to be answered (its model's deadline, which bounds retries and fallbacks, or the
    longest upstream deadline of its deployments) plus a margin."""
    default = settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS
    longest = max((d.provider.timeout_seconds or default) for d in deployments)
    if deadline is not None:
        longest = max(longest, deadline - time.perf_counter())
    return int((longest + settings.GATEWAY_LEASE_MARGIN_SECONDS) * 1000)


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


async def admit(
    limiter: Limiter,
    *,
    key: KeyContext,
    model: str,
    estimate: Estimate,
    deployments: Sequence[DeploymentConfig],
    exchange: Exchange,
    deadline: float | None = None,
) -> Admission:
    """One round trip to the limiter; raises the refusal (429, or 503 when failing closed).
    The ``x-ratelimit-*`` headers go on the exchange, so every later response carries them."""
    policy = key.limits
    if policy.empty:
        return Admission(plan=None, admitted_ms=0)
    plan = build_plan(
        policy,
        prefix=settings.GATEWAY_REDIS_PREFIX,
        request_id=exchange.request_id,
        model=model,
        tokens=estimate.tokens,
        cost_micro=to_micro(max_cost(deployments, estimate, get_runtime().watcher.current().prices))
        if policy.quotas
        else 0,
        lease_ms=_lease_ms(deployments, deadline=deadline),
        now=dt.datetime.now(dt.UTC),
        tz=settings.GATEWAY_QUOTA_TIMEZONE,
    )
    try:
        admission = await limiter.admit(plan)
    except (RateLimited, QuotaExceeded) as refusal:
        observe_refusal(tenant=key.tenant_name, model=model, quota=isinstance(refusal, QuotaExceeded))
        raise
    except Overloaded:
        observe_shed("limiter_lag")
        raise
    if admission.plan is None:  # the limiter could not be reached and fails open
        observe_unchecked()
    exchange.headers.update(admission.headers)
    return admission
