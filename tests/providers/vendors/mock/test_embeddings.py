"""The mock provider's embeddings: deterministic vectors."""

from __future__ import annotations

import orjson

from providers.vendors.mock.embeddings import mock_result


def test_mock_is_deterministic():
    first = mock_result({"input": ["a", "b"], "dimensions": 3}, model="mock-embed")
    assert first == mock_result({"input": ["a", "b"], "dimensions": 3}, model="mock-embed")
    vectors = [d["embedding"] for d in orjson.loads(first.body)["data"]]
    assert [len(v) for v in vectors] == [3, 3]
    assert vectors[0] != vectors[1]
    assert first.prompt_tokens == 2
