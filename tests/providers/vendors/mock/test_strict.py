"""OpenAI's strict-mode schema rules, as the mock provider checks them."""

from __future__ import annotations

import pytest

from providers.vendors.mock.strict import MAX_DEPTH, strict_violation

STRICT = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "stops": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["city", "stops"],
    "additionalProperties": False,
}


def test_a_strict_schema_passes():
    assert strict_violation(STRICT) is None


def test_the_root_needs_additional_properties_false():
    schema = {**STRICT}
    del schema["additionalProperties"]
    assert strict_violation(schema) == (
        "In context=(), 'additionalProperties' is required to be supplied and to be false."
    )


def test_a_nested_object_needs_every_property_required():
    items = {**STRICT["properties"]["stops"]["items"], "properties": {"name": {}, "at": {}}}
    schema = {**STRICT, "properties": {**STRICT["properties"], "stops": {"type": "array", "items": items}}}
    assert strict_violation(schema) == (
        "In context=('properties', 'stops', 'items'), 'required' is required to be supplied and to be "
        "an array including every key in properties. Missing 'at'."
    )


@pytest.mark.parametrize("key", ["$defs", "definitions"])
def test_definitions_are_checked(key):
    schema = {**STRICT, key: {"loose": {"type": "object", "properties": {}}}}
    assert strict_violation(schema) == (
        f"In context=('{key}', 'loose'), 'additionalProperties' is required to be supplied and to be false."
    )


def test_any_of_branches_are_checked():
    schema = {"anyOf": [{"type": "null"}, {"type": ["object", "null"], "additionalProperties": True}]}
    assert strict_violation(schema) == (
        "In context=('anyOf', '1'), 'additionalProperties' is required to be supplied and to be false."
    )


def test_deep_nesting_is_refused_without_recursing_further():
    schema: dict[str, object] = {"type": "string"}
    for _ in range(MAX_DEPTH + 5):
        schema = {"anyOf": [schema]}
    assert strict_violation(schema) == (
        f"In context={('anyOf', '0') * (MAX_DEPTH + 1)!r}, the schema nests deeper than {MAX_DEPTH} levels."
    )
