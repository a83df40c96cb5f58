"""``applyconfig``'s routing settings: the issue's example as written, idempotence, refusals,
and what the catalog makes of them."""

from __future__ import annotations

from typing import get_args

import pytest

from gateway_site.console.declarative import ConfigError, ModelSpec, apply_config, parse_config
from providers.catalog import load_catalog
from providers.models import PublicModel
from providers.types import CachePolicy
from routing.strategies import STRATEGIES

pytestmark = pytest.mark.django_db

ISSUE_EXAMPLE = """\
providers:
  - {name: upstream-a, kind: openai, base_url: "http://127.0.0.1:9001/v1"}
  - {name: upstream-b, kind: openai, base_url: "http://127.0.0.1:9002/v1"}
models:
  - name: chat-backup
    deployments:
      - {provider: upstream-b, model: backup, free: true}
  - name: chat-ha
    strategy: weighted            # model | round_robin | weighted | least_latency | cost_optimized | fallback
    fallbacks: [chat-backup]      # other public models tried, in order, when every deployment failed
    timeout_seconds: 60
    cache: {ttl_seconds: 300, key: full_request}   # optional; key: full_request | messages_only
    deployments:
      - provider: upstream-a
        model: gpt-4o-mini
        weight: 3
        priority: 1
        input_per_million: "0.15"
        output_per_million: "0.60"
      - provider: upstream-b
        model: gpt-4o-mini
        weight: 1
        priority: 2
        input_per_million: "0.10"
        output_per_million: "0.40"
"""


def test_issue_example_applies_once_and_reaches_the_catalog():
    assert apply_config(parse_config(ISSUE_EXAMPLE)).changed
    assert not apply_config(parse_config(ISSUE_EXAMPLE)).changed
    model = PublicModel.objects.get(name="chat-ha")
    assert (model.strategy, model.fallbacks, model.timeout_seconds) == ("weighted", ["chat-backup"], 60.0)
    assert (model.cache_ttl_seconds, model.cache_key) == (300, "full_request")
    route = load_catalog().models["chat-ha"]
    assert route.strategy == "weighted"
    assert route.fallbacks == ("chat-backup",)
    assert route.timeout_seconds == 60.0
    assert route.cache == CachePolicy(ttl_seconds=300, key="full_request")
    assert [(d.provider.name, d.weight, d.priority) for d in route.deployments] == [
        ("upstream-a", 3, 1),
        ("upstream-b", 1, 2),
    ]
    assert load_catalog().models["chat-backup"].strategy == "model"
    assert load_catalog().models["chat-backup"].cache is None


def test_removing_the_cache_and_changing_the_strategy_updates():
    apply_config(parse_config(ISSUE_EXAMPLE))
    changed = ISSUE_EXAMPLE.replace("strategy: weighted", "strategy: least_latency").replace(
        "    cache: {ttl_seconds: 300, key: full_request}   # optional; key: full_request | messages_only\n",
        "",
    )
    report = apply_config(parse_config(changed))
    assert report.updated == ["model chat-ha (strategy, cache_ttl_seconds)"]
    assert load_catalog().models["chat-ha"].cache is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("strategy: weighted", "strategy: fastest", "strategy"),
        ("fallbacks: [chat-backup]", "fallbacks: [nope]", "unknown fallback model 'nope'"),
        ("fallbacks: [chat-backup]", "fallbacks: [chat-ha]", "cannot be its own fallback"),
        ("key: full_request}", "key: everything}", "cache.key"),
        ("timeout_seconds: 60", "timeout_seconds: 0", "timeout_seconds"),
    ],
)
def test_bad_routing_settings_are_refused(old: str, new: str, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_config(ISSUE_EXAMPLE.replace(old, new))


def test_config_strategies_match_the_router():
    assert get_args(ModelSpec.model_fields["strategy"].annotation) == STRATEGIES
    assert tuple(PublicModel.Strategy.values) == STRATEGIES
