"""quotas.access: the one model-access decision, as a pure function of a compiled policy."""

from __future__ import annotations

import pytest

from quotas.access import AccessPolicy, compile_patterns, model_allowed


def policy(
    *, allow: tuple[str, ...] = (), deny: tuple[str, ...] = (), key: tuple[str, ...] = ()
) -> AccessPolicy:
    return AccessPolicy(
        tenant_allow=compile_patterns(allow),
        tenant_deny=compile_patterns(deny),
        key_allow=compile_patterns(key),
    )


MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4", "claude-3-haiku", "mock-echo", "openai/gpt-4o"]


def allowed(p: AccessPolicy) -> list[str]:
    return [m for m in MODELS if model_allowed(p, m)]


def test_no_rules_allow_every_model():
    assert allowed(policy()) == MODELS


def test_tenant_allow_list_limits_models():
    assert allowed(policy(allow=("gpt-4o*", "mock-echo"))) == ["gpt-4o", "gpt-4o-mini", "mock-echo"]


def test_key_allow_list_limits_models():
    assert allowed(policy(key=("claude-*",))) == ["claude-3-haiku"]


def test_key_and_tenant_allow_lists_must_both_match():
    assert allowed(policy(allow=("gpt-*",), key=("*-mini", "claude-*"))) == ["gpt-4o-mini"]


def test_tenant_deny_wins_over_tenant_allow():
    assert allowed(policy(allow=("gpt-4o*",), deny=("gpt-4o-mini",))) == ["gpt-4o"]


def test_tenant_deny_wins_over_key_allow():
    assert allowed(policy(deny=("*mini",), key=("gpt-4o-mini", "gpt-4o"))) == ["gpt-4o"]


def test_deny_alone_leaves_the_rest_allowed():
    assert allowed(policy(deny=("gpt-*",))) == ["claude-3-haiku", "mock-echo", "openai/gpt-4o"]


def test_deny_everything():
    assert allowed(policy(deny=("*",), allow=("*",), key=("*",))) == []


@pytest.mark.parametrize(
    ("pattern", "model", "expected"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),  # a pattern matches the whole name, not a prefix
        ("gpt-4o", "xgpt-4o", False),
        ("gpt-4o*", "gpt-4o", True),
        ("gpt-4o*", "gpt-4", False),
        ("gpt-?", "gpt-4", True),
        ("gpt-?", "gpt-4o", False),
        ("gpt-[34]", "gpt-3", True),
        ("gpt-[34]", "gpt-5", False),
        ("gpt-[!3]", "gpt-5", True),
        ("*", "openai/gpt-4o", True),  # * crosses "/"
        ("openai/*", "openai/gpt-4o", True),
        ("openai/*", "gpt-4o", False),
        ("GPT-4O", "gpt-4o", False),  # case-sensitive
        ("gpt.4o", "gpt-4o", False),  # "." is literal, not a regex wildcard
        ("gpt-4o+", "gpt-4oo", False),
    ],
)
def test_glob_semantics(pattern, model, expected):
    assert model_allowed(policy(allow=(pattern,)), model) is expected
    assert model_allowed(policy(key=(pattern,)), model) is expected
    assert model_allowed(policy(deny=(pattern,)), model) is (not expected)


def test_empty_patterns_are_ignored():
    assert compile_patterns(["", "gpt-*", ""]) == compile_patterns(["gpt-*"])
    assert len(compile_patterns(["", ""])) == 0
    # An allow-list holding only an empty pattern is no allow-list at all.
    assert allowed(policy(allow=("",))) == MODELS
