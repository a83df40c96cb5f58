"""``/v1/embeddings`` on the mock provider: deterministic vectors derived from the text, counted
with the gateway's tokenizer."""

from __future__ import annotations

import hashlib

from providers.tokens import count_tokens
from providers.translation.embeddings import EmbeddingResult, dimensions, openai_list, texts
from providers.translation.upstream import JsonObject, UpstreamCall

MOCK_DIMENSIONS = 8


def mock_vector(text: str, size: int) -> list[float]:
    """Deterministic, unit-free values in [-1, 1) derived from the text, exact in float32: the
    text's SHA-256 digest, repeated (built by list repetition, so a large ``dimensions`` costs
    the copy, not a Python step per value)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    cycle = [(byte - 128) / 128 for byte in digest]
    return (cycle * (size // len(cycle) + 1))[:size]


def mock_result(body: JsonObject, *, model: str) -> EmbeddingResult:
    inputs = texts(body, provider="mock")
    size = dimensions(body) or MOCK_DIMENSIONS
    vectors = [mock_vector(text, size) for text in inputs]
    tokens = sum(count_tokens(t) for t in inputs)
    return openai_list(
        vectors, model=model, prompt_tokens=tokens, encoding_format=body.get("encoding_format")
    )


async def embed(call: UpstreamCall) -> EmbeddingResult:
    return mock_result(call.body, model=call.deployment.upstream_model)
