"""Pydantic's validation errors as the client's 400: one problem, in OpenAI's wording, with
``param`` the client's own path (``messages[0].content``, OpenAI's notation), never a
validator's internals (union members, discriminator tags, class names)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gateway_site.api.errors import RequestError

Segment = str | int

# Errors that say "this value has the wrong JSON type", in the client's words (arrays and
# objects, never Python's lists, dictionaries or model classes).
_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


def client_path(raw: object, loc: Sequence[Segment], *, missing: bool) -> tuple[Segment, ...]:
    """The part of ``loc`` that exists in the client's body. Pydantic adds a label for each union
    member and discriminator tag it tried; a label is no key of the body at that point, which is
    how it is told apart from the client's own keys and indexes. The last segment of a missing
    field is kept: it names what the client left out."""
    path: list[Segment] = []
    node = raw
    for position, segment in enumerate(loc):
        if _holds(node, segment):
            node = node[segment]  # type: ignore[index]
        elif not (missing and position == len(loc) - 1):
            continue
        path.append(segment)
    return tuple(path)


def _holds(node: object, segment: Segment) -> bool:
    if isinstance(node, list):
        return isinstance(segment, int) and 0 <= segment < len(node)
    return isinstance(node, dict) and segment in node


def format_path(path: Sequence[Segment]) -> str | None:
    """``("messages", 0, "content")`` as ``messages[0].content``."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text or None


def request_error(exc: ValidationError, raw: object) -> RequestError:
    """The 400 for the deepest problem in the client's body: a value nested inside the field
    says more than the field's type mismatch a union reports beside it."""
    located = [
        (client_path(raw, error["loc"], missing=error["type"] == "missing"), error)
        for error in exc.errors(include_url=False)
    ]
    deepest = max(len(path) for path, _ in located)
    path, first = next((p, e) for p, e in located if len(p) == deepest)
    param = format_path(path)
    if first["type"] == "missing":
        return RequestError(f"Missing required parameter: '{param}'.", param=param)
    where = f" for '{param}'" if param else ""
    here = [error for p, error in located if p == path]
    return RequestError(f"Invalid value{where}: {_reason(here)}.", param=param)


def _reason(errors: list[ErrorDetails]) -> str:
    """One error's message, or (a union's members all refusing the value's type) the types
    that would have been accepted."""
    words = [_TYPE_WORDS.get(error["type"]) for error in errors]
    if len(errors) > 1 and all(words):
        expected = list(dict.fromkeys(word for word in words if word))
        return "Input should be " + " or ".join(expected)
    first = errors[0]
    if first["type"] in ("model_type", "model_attributes_type", "dict_type", "list_type"):
        return f"Input should be {_TYPE_WORDS[first['type']]}"
    return str(first["msg"]).removeprefix("Value error, ")
