"""OpenAI's rules for a schema in strict mode (``strict: true`` on a ``json_schema`` response
format or on a function tool), checked by the mock provider so that a schema the real API
refuses is refused here too: every object schema sets ``additionalProperties: false`` and
requires every one of its properties."""

from __future__ import annotations

from collections.abc import Iterator

from providers.translation.upstream import JsonObject

MAX_DEPTH = 64

Context = tuple[str, ...]


def strict_violation(schema: JsonObject) -> str | None:
    """The first rule ``schema`` breaks, worded as OpenAI words it, or None."""
    return _check(schema, context=(), depth=0)


def _check(node: object, *, context: Context, depth: int) -> str | None:
    if not isinstance(node, dict):
        return None
    if depth > MAX_DEPTH:
        return f"In context={context!r}, the schema nests deeper than {MAX_DEPTH} levels."
    problem = _object_problem(node) if _is_object(node) else None
    if problem is not None:
        return f"In context={context!r}, {problem}"
    for path, child in _children(node):
        found = _check(child, context=(*context, *path), depth=depth + 1)
        if found is not None:
            return found
    return None


def _is_object(node: JsonObject) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _object_problem(node: JsonObject) -> str | None:
    if node.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    properties = node.get("properties")
    required = node.get("required")
    listed = {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()
    missing = [name for name in (properties if isinstance(properties, dict) else {}) if name not in listed]
    if missing:
        return (
            "'required' is required to be supplied and to be an array including every key in "
            f"properties. Missing '{missing[0]}'."
        )
    return None


def _children(node: JsonObject) -> Iterator[tuple[Context, object]]:
    for key in ("properties", "$defs", "definitions"):
        mapping = node.get(key)
        for name, child in mapping.items() if isinstance(mapping, dict) else ():
            yield (key, str(name)), child
    items = node.get("items")
    if isinstance(items, dict):
        yield ("items",), items
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        listed = node.get(key)
        for index, child in enumerate(listed if isinstance(listed, list) else ()):
            yield (key, str(index)), child
