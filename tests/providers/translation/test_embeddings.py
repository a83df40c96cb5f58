"""The embeddings answer every kind shares: OpenAI's list in floats and in base64, and an
OpenAI-shaped answer passed through (docs/providers.md, "Embeddings")."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from providers.errors import UpstreamProtocolError
from providers.translation.embeddings import openai_list, passthrough_result


def test_openai_list_in_floats_and_in_little_endian_float32_base64():
    floats = orjson.loads(openai_list([[0.5, -1.0]], model="m", prompt_tokens=3, encoding_format=None).body)
    assert floats == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    encoded = orjson.loads(
        openai_list([[0.5, -1.0]], model="m", prompt_tokens=3, encoding_format="base64").body
    )
    raw = encoded["data"][0]["embedding"]
    assert raw == base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    assert struct.unpack("<2f", base64.b64decode(raw)) == (0.5, -1.0)


def test_openai_answer_passes_through_untouched():
    content = (
        b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAPw=="}],'
        b'"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}'
    )
    result = passthrough_result(content)
    assert (result.body, result.prompt_tokens) == (content, 2)
    with pytest.raises(UpstreamProtocolError):
        passthrough_result(b'{"object":"list"}')
