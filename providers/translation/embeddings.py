"""What every kind's ``/v1/embeddings`` shares: the inputs read from OpenAI's request, and the
answer, always OpenAI's list, floats or base64 (little-endian float32) as the client asked.
Each kind's embedder is its vendor's ``embeddings`` module (none for a kind without an
embeddings API); docs/providers.md lists what each does."""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.translation.upstream import ErrorMap, JsonObject, UpstreamCall, post
from providers.translation.vendor_json import json_object


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The OpenAI-shaped answer to return and the prompt tokens it used."""

    body: bytes
    prompt_tokens: int


def texts(body: JsonObject, *, provider: str) -> list[str]:
    """The inputs as strings; token-array inputs only work with OpenAI-compatible upstreams."""
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise UnsupportedRequest(
            f"The {provider} provider takes 'input' as a string or a list of strings.", param="input"
        )
    return [str(item) for item in items]


def dimensions(body: JsonObject) -> int | None:
    value = body.get("dimensions")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def openai_list(
    vectors: Sequence[Sequence[float]], *, model: str, prompt_tokens: int, encoding_format: object
) -> EmbeddingResult:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    body = {"object": "list", "data": data, "model": model, "usage": usage}
    return EmbeddingResult(body=orjson.dumps(body), prompt_tokens=prompt_tokens)


def _encode(vector: Sequence[float], encoding_format: object) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def passthrough_result(content: bytes) -> EmbeddingResult:
    """An OpenAI-shaped answer (OpenAI, Azure), returned untouched."""
    parsed = json_object(content)
    usage = parsed.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(parsed.get("data"), list):
        raise UpstreamProtocolError("The upstream provider sent an embeddings answer without data.")
    return EmbeddingResult(body=content, prompt_tokens=tokens if isinstance(tokens, int) else 0)


async def post_content(
    call: UpstreamCall, request: tuple[str, dict[str, str], bytes], map_error: ErrorMap
) -> bytes:
    """The body of a 2xx answer to the embeddings request; an error status raises the vendor's
    mapped error."""
    return (await post(call, request, map_error=map_error, stream=False)).content


# One kind's ``/v1/embeddings``: the call against its deployment, answered in OpenAI's list.
Embedder = Callable[[UpstreamCall], Awaitable[EmbeddingResult]]
