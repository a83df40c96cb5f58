"""A body sent on as its client wrote it: only the top-level ``model`` value changes, whatever
the spacing, escapes and nested ``model`` keys around it; and vendor events written back."""

from __future__ import annotations

import json

import pytest

from providers.translation.native_body import model_spans, sse_frame, with_model


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"claude","max_tokens":5}',
        b' {\n  "model" : "claude" ,"max_tokens":5}',
        b'{"max_tokens":5,"model":"claude"}',
        b'{"tools":[{"name":"t","input_schema":{"properties":{"model":{"type":"string"}}}}],"model":"claude"}',
        b'{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}],"model":"claude"}',
        b'{"messages":[{"content":[{"type":"tool_use","input":{"model":"gpt"}}]}],"model":"claude"}',
        b'{"metadata":{"model":"nested"},"model":"cl\\u0061ude","x":"\\u00e9"}',
    ],
)
def test_only_the_top_level_model_is_replaced(body):
    replaced = with_model(body, "claude-sonnet-4-5-20250929")
    expected = json.loads(body)
    expected["model"] = "claude-sonnet-4-5-20250929"
    assert json.loads(replaced) == expected
    [(start, end)] = model_spans(body)
    assert replaced == body[:start] + b'"claude-sonnet-4-5-20250929"' + body[end:]


def test_every_other_byte_is_kept():
    body = b'{"max_tokens": 1.0e3, "model": "claude", "x": "\\u00e9\\n", "y": [1 , 2]}'
    assert with_model(body, "up") == b'{"max_tokens": 1.0e3, "model": "up", "x": "\\u00e9\\n", "y": [1 , 2]}'


def test_a_body_without_model_gets_one_first():
    assert with_model(b'{"max_tokens":5}', "up") == b'{"model":"up","max_tokens":5}'
    assert with_model(b"{ }", "up") == b'{"model":"up" }'
    assert model_spans(b'{"models":"no","x":{"model":"nested"}}') == []


def test_a_model_named_twice_is_replaced_both_times():
    """Whichever of two ``model`` members an upstream reads, it reads the routed model."""
    body = b'{"model":"cheap","messages":[],"model":"claude-opus-4-1"}'
    assert (
        with_model(body, "claude-haiku-4-5")
        == b'{"model":"claude-haiku-4-5","messages":[],"model":"claude-haiku-4-5"}'
    )
    nested = b'{"model": "a", "x": {"model": "b"}}'
    assert with_model(nested, "up") == b'{"model": "up", "x": {"model": "b"}}'


def test_sse_frame_writes_each_data_line():
    assert sse_frame("ping", b'{"type":"ping"}') == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert sse_frame("", b"a\nb") == b"data: a\ndata: b\n\n"
