"""The embeddings answers the fakes share: deterministic vectors whose values are exact in
float32 (so base64 round trips compare equal), in OpenAI's wire format (docs/providers.md,
"Embeddings")."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EmbeddingsReply:
    dimensions: int = 4
    prompt_tokens: int = 8


def vector(index: int, dimensions: int) -> list[float]:
    """Input ``index``'s vector: (index + 1) / 2 + j / 8 for each dimension j."""
    return [(index + 1) * 0.5 + j * 0.125 for j in range(dimensions)]


def inputs_of(body: dict[str, Any]) -> list[Any]:
    value = body.get("input")
    return value if isinstance(value, list) and value and not isinstance(value[0], int) else [value]


def openai_embeddings(body: dict[str, Any], reply: EmbeddingsReply, *, model: str) -> dict[str, Any]:
    assert body.get("encoding_format", "float") in ("float", "base64"), "encoding_format"
    dimensions = body.get("dimensions") or reply.dimensions
    data = []
    for index, _ in enumerate(inputs_of(body)):
        values = vector(index, dimensions)
        embedding: Any = values
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}
