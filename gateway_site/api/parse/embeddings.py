"""An embeddings request body in, validated values out: OpenAI's fields checked (pydantic), the
sizes a client controls bounded, unknown fields kept and forwarded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway_site.api.parse.bounds import MAX_EMBEDDING_INPUTS, BodyBounds, check_length, check_maximum
from gateway_site.api.parse.chat import Integer, load_json_object, normalize_integers, validated

NonEmptyText = Annotated[str, Field(min_length=1)]


Tokens = Annotated[list[int], Field(min_length=1)]


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1)]
        | Tokens
        | Annotated[list[Tokens], Field(min_length=1)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[Integer, Field(ge=1)] | None = None
    user: str | None = None


def _check_input_sizes(value: object, *, bounds: BodyBounds) -> None:
    """At most 2048 inputs (OpenAI's limit), and no token array longer than the bound. A flat
    array is one input: integers (its tokens) or strings (one input each)."""
    if not isinstance(value, list) or not value:
        return
    if isinstance(value[0], int):
        check_length(value, param="input", limit=bounds.embedding_input_tokens)
        return
    check_length(value, param="input", limit=MAX_EMBEDDING_INPUTS)
    for index, item in enumerate(value):
        check_length(item, param=f"input[{index}]", limit=bounds.embedding_input_tokens)


def parse_embeddings_request(
    body: bytes, *, limit: int, bounds: BodyBounds | None = None
) -> tuple[str, dict[str, object]]:
    """The model and the body to forward; ``bounds`` defaults to the settings'."""
    bounds = bounds or BodyBounds.from_settings()
    raw = load_json_object(body, limit=limit, bounds=bounds)
    _check_input_sizes(raw.get("input"), bounds=bounds)
    parsed = validated(EmbeddingsBody, raw)
    check_maximum(parsed.dimensions, param="dimensions", limit=bounds.embedding_dimensions)
    normalize_integers(raw, ("dimensions",))
    return parsed.model, raw
