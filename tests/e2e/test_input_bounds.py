"""Sizes a client controls are refused with a 400 at parse time, through a real Daphne process:
nothing reaches the upstream, no usage record is written, and the process goes on serving.
What OpenAI's specification accepts reaches the upstream as the client wrote it."""

from __future__ import annotations

import json

import httpx
import pytest

from accounting.models import UsageRecord
from tests.conftest import mock_echo_yaml
from tests.e2e.conftest import MODEL, UPSTREAM_MODEL, Proxy, assert_gateway_headers, records

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def nested_lists(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def refused(response: httpx.Response) -> tuple[int, str | None, str | None, str]:
    assert_gateway_headers(response)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return response.status_code, error["param"], error["code"], error["message"]


def test_deep_nesting_is_a_400_before_admission_not_a_500_after(start_proxy):
    proxy: Proxy = start_proxy()
    too_deep_for_orjson = proxy.chat_body(x=nested_lists(300))
    deep_tool_schema = proxy.chat_body(
        tools=[{"type": "function", "function": {"name": "f", "parameters": nested_lists(70)}}]
    )

    first = proxy.http.post("/v1/chat/completions", content=json.dumps(too_deep_for_orjson).encode())
    second = proxy.http.post("/v1/chat/completions", json=deep_tool_schema)

    assert refused(first) == (
        400,
        "x",
        "nesting_above_max_depth",
        "Invalid 'x': nested too deeply. Expected a request body at most 64 levels deep.",
    )
    assert refused(second)[:3] == (400, "tools", "nesting_above_max_depth")
    assert proxy.upstream.requests == []
    assert UsageRecord.objects.count() == 0
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200
    assert len(records(1)) == 1


def test_counts_over_their_bound_never_reach_the_upstream(start_proxy):
    proxy: Proxy = start_proxy(
        GATEWAY_MAX_MESSAGES="3", GATEWAY_MAX_TOOLS="1", GATEWAY_MAX_COMPLETION_TOKENS="50"
    )
    user = {"role": "user", "content": "hi"}
    tool = {"type": "function", "function": {"name": "f"}}
    cases = [
        (proxy.chat_body(messages=[user] * 4), "messages", "array_above_max_length"),
        (proxy.chat_body(tools=[tool, tool]), "tools", "array_above_max_length"),
        (proxy.chat_body(max_completion_tokens=51), "max_completion_tokens", "integer_above_max_value"),
        (proxy.chat_body(n=129), "n", None),
        (
            proxy.chat_body(metadata={str(i): "v" for i in range(17)}),
            "metadata",
            "object_above_max_properties",
        ),
    ]
    for body, param, code in cases:
        response = proxy.http.post("/v1/chat/completions", json=body)
        assert refused(response)[:3] == (400, param, code)
    assert proxy.upstream.requests == []
    assert UsageRecord.objects.count() == 0

    at_bounds = proxy.chat_body(messages=[user] * 3, tools=[tool], max_completion_tokens=50)
    assert proxy.http.post("/v1/chat/completions", json=at_bounds).status_code == 200
    assert [r.body["max_completion_tokens"] for r in proxy.upstream.requests] == [50]


def test_spec_valid_bodies_reach_the_upstream_as_sent(start_proxy):
    proxy: Proxy = start_proxy()
    user = {"role": "user", "content": "Look it up"}
    bodies = [
        {
            "model": MODEL,
            "messages": [user, {"role": "assistant", "function_call": {"name": "find", "arguments": "{}"}}],
            "functions": [{"name": "find"}],
        },
        {
            "model": MODEL,
            "messages": [
                user,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c1", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "", "content": "1"},
            ],
            "tools": [{"type": "custom", "custom": {"name": "sql"}}],
            "x-unknown": {"kept": [1, {"as": "is"}]},
        },
        {"model": MODEL, "messages": [user], "n": 2.0, "max_tokens": 8.0},
    ]
    for body in bodies:
        response = proxy.http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
    sent = [r.body for r in proxy.upstream.requests]
    assert sent[:2] == [{**body, "model": UPSTREAM_MODEL} for body in bodies[:2]]
    # Integral numbers are the integers JSON Schema says they are, and go out as such.
    assert sent[2] == {"model": UPSTREAM_MODEL, "messages": [user], "n": 2, "max_tokens": 8}
    assert b'"n":2,' in proxy.upstream.requests[2].raw
    assert len(records(3)) == 3


def test_mock_embeddings_dimensions_are_bounded(gateway_factory, configure, make_key):
    configure(mock_echo_yaml())
    key = make_key("acme")
    gateway = gateway_factory(GATEWAY_MAX_EMBEDDING_DIMENSIONS="16")
    with httpx.Client(
        base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
    ) as http:

        def embed(**fields: object) -> httpx.Response:
            return http.post("/v1/embeddings", json={"model": "mock-echo", "input": ["a", "b"], **fields})

        over = embed(dimensions=17)
        assert refused(over) == (
            400,
            "dimensions",
            "integer_above_max_value",
            "Invalid 'dimensions': integer above maximum value. Expected a value <= 16, but got 17 instead.",
        )
        too_many = http.post("/v1/embeddings", json={"model": "mock-echo", "input": ["a"] * 2049})
        assert refused(too_many)[:3] == (400, "input", "array_above_max_length")
        assert UsageRecord.objects.count() == 0

        at_bound, integral = embed(dimensions=16), embed(dimensions=1.0)
        assert [len(item["embedding"]) for item in at_bound.json()["data"]] == [16, 16]
        assert [len(item["embedding"]) for item in integral.json()["data"]] == [1, 1]
    assert len(records(2)) == 2
