"""The mock provider's JSON values for a JSON Schema: exact, valid (checked with jsonschema),
derived from the prompt where the schema allows, and bounded whatever the schema asks."""

from __future__ import annotations

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from providers.errors import UnsupportedRequest
from providers.vendors.mock.schema import MAX_DEPTH, MAX_STEPS, example, prompt_of

PROMPT = prompt_of("Book 2 rooms in Paris for 3.5 nights, celsius please")
TEXT = "Book 2 rooms in Paris for 3.5 nights, celsius please"

NODE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 4},
                "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
            },
            "required": ["name", "next"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}

CASES = [
    ("string echoes the prompt", {"type": "string"}, TEXT),
    ("integer takes the prompt's first number", {"type": "integer"}, 2),
    ("integer out of bounds takes the lower bound", {"type": "integer", "minimum": 5, "maximum": 9}, 5),
    ("exclusive bounds", {"type": "integer", "exclusiveMinimum": 2, "exclusiveMaximum": 4}, 3),
    ("multipleOf above an exclusive bound", {"type": "integer", "multipleOf": 7, "exclusiveMinimum": 7}, 14),
    ("draft 4 exclusiveMinimum true", {"type": "number", "minimum": 2, "exclusiveMinimum": True}, 3),
    ("number between close bounds", {"type": "number", "minimum": 0.25, "maximum": 0.75}, 0.25),
    ("enum takes the value the prompt mentions", {"enum": ["fahrenheit", "celsius"]}, "celsius"),
    ("enum without a mention takes the first", {"type": "string", "enum": ["low", "high"]}, "low"),
    ("const", {"const": {"kind": "fixed"}}, {"kind": "fixed"}),
    ("boolean", {"type": "boolean"}, True),
    ("null", {"type": "null"}, None),
    ("type list takes the first non-null type", {"type": ["null", "integer"]}, 2),
    ("no type, properties: an object", {"properties": {"ok": {"type": "boolean"}}}, {"ok": True}),
    (
        "array: minItems items, numbers in prompt order",
        {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 4},
        [2, 3.5, 0],
    ),
    ("array: maxItems 0", {"type": "array", "items": {"type": "string"}, "maxItems": 0}, []),
    (
        "prefixItems then items: false",
        {
            "type": "array",
            "prefixItems": [{"type": "string", "maxLength": 4}, {"type": "integer"}],
            "items": False,
            "minItems": 2,
        },
        ["Book", 2],
    ),
    (
        "formats and lengths",
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "mail": {"type": "string", "format": "email"},
                "id": {"type": "string", "format": "uuid"},
                "short": {"type": "string", "maxLength": 4},
                "long": {"type": "string", "minLength": 60},
            },
        },
        {
            "when": "2025-01-01T00:00:00Z",
            "day": "2025-01-01",
            "mail": "mock@example.com",
            "id": "00000000-0000-4000-8000-000000000000",
            "short": "Book",
            "long": TEXT + "........",
        },
    ),
    (
        "nested objects: every declared property, then undeclared required ones",
        {
            "type": "object",
            "properties": {
                "guest": {
                    "type": "object",
                    "properties": {"rooms": {"type": "integer"}, "vip": {"type": "boolean"}},
                    "required": ["rooms"],
                    "additionalProperties": False,
                },
                "city": {"type": "string", "enum": ["London", "Paris"]},
            },
            "required": ["guest", "city", "nights"],
            "additionalProperties": {"type": "number"},
        },
        {"guest": {"rooms": 2, "vip": True}, "city": "Paris", "nights": 3.5},
    ),
    (
        "allOf merges the parts",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string", "maxLength": 2}}, "required": ["b"]},
            ]
        },
        {"a": 2, "b": "Bo"},
    ),
    (
        "a recursive $ref ends on its null branch",
        NODE,
        {
            "name": "Book",
            "next": {"name": "Book", "next": {"name": "Book", "next": {"name": "Book", "next": None}}},
        },
    ),
    (
        "a recursive tree ends with empty arrays",
        {
            "$defs": {
                "tree": {
                    "type": "object",
                    "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
                    "required": ["kids"],
                }
            },
            "$ref": "#/$defs/tree",
        },
        {"kids": [{"kids": [{"kids": [{"kids": []}]}]}]},
    ),
]


@pytest.mark.parametrize(("schema", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_example_is_exact_and_valid(schema, expected):
    value = example(schema, prompt=PROMPT, param="p")
    assert value == expected
    assert type(value) is type(expected)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(value)) == []


def test_draft7_tuple_items_with_additional_items():
    schema = {"type": "array", "items": [{"type": "integer"}, {"type": "boolean"}], "additionalItems": False}
    value = example({**schema, "minItems": 2}, prompt=PROMPT, param="p")
    assert value == [2, True]
    assert list(Draft7Validator(schema).iter_errors(value)) == []


def test_numbers_come_from_the_prompt_in_order_across_properties():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    assert example(schema, prompt=prompt_of("add 40 and -2"), param="p") == {"a": 40, "b": -2}


def test_an_empty_prompt_gives_strings_the_property_name():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert example(schema, prompt=prompt_of("   "), param="p") == {"city": "city"}


def test_strings_are_cut_to_the_prompt_excerpt():
    prompt = prompt_of("word " * 1000)
    value = example({"type": "string"}, prompt=prompt, param="p")
    assert value == "word " * 40
    assert len(value) == 200


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 10**9},
            f"it needs more than {MAX_STEPS} values and references",
        ),
        (
            {"$defs": {"loop": {"$ref": "#/$defs/loop"}}, "$ref": "#/$defs/loop"},
            f"it needs more than {MAX_STEPS} values and references",
        ),
        (
            {
                "$defs": {
                    "n": {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "required": ["n"]}
                },
                "$ref": "#/$defs/n",
            },
            f"it nests deeper than {MAX_DEPTH} levels",
        ),
        (
            {"$ref": "https://example.com/schema.json"},
            "'$ref' 'https://example.com/schema.json' is not a local reference ('#/...')",
        ),
        ({"$ref": "#/$defs/missing"}, "'$ref' '#/$defs/missing' does not point to a schema"),
    ],
    ids=["huge minItems", "a $ref loop", "required recursion", "remote $ref", "dangling $ref"],
)
def test_schemas_it_cannot_fill_are_a_400_naming_the_param(schema, message):
    with pytest.raises(UnsupportedRequest) as caught:
        example(schema, prompt=PROMPT, param="tools.0.function.parameters")
    assert caught.value.status == 400
    assert caught.value.param == "tools.0.function.parameters"
    assert caught.value.message == f"The mock provider cannot fill this schema: {message}."


def test_a_wide_array_of_objects_stops_at_the_step_budget():
    schema = {
        "type": "array",
        "minItems": 100,
        "items": {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10)}},
    }
    with pytest.raises(UnsupportedRequest, match=f"more than {MAX_STEPS} values"):
        example(schema, prompt=PROMPT, param="p")


def test_numbers_stay_within_what_json_carries():
    # 40 digits are read as numbers of at most 15 digits; the first fills the integer
    assert example({"type": "integer"}, prompt=prompt_of("9" * 40), param="p") == 999_999_999_999_999
    huge = {"type": "integer", "minimum": 1e300}
    value = example(huge, prompt=PROMPT, param="p")
    assert value == 1e300
    assert isinstance(value, float)  # orjson writes integers of at most 64 bits
    assert list(Draft202012Validator(huge).iter_errors(value)) == []
    # a step too fine to divide the bound by is answered (with 0), not a crash
    assert example({"type": "integer", "multipleOf": 1e-300, "minimum": 1e300}, prompt=PROMPT, param="p") == 0


def test_nested_all_of_stops_at_the_depth_limit():
    schema: dict[str, object] = {"type": "string"}
    for _ in range(2000):
        schema = {"allOf": [schema]}
    with pytest.raises(UnsupportedRequest) as caught:
        example(schema, prompt=PROMPT, param="p")
    assert (
        caught.value.message
        == f"The mock provider cannot fill this schema: it nests deeper than {MAX_DEPTH} levels."
    )


def test_all_of_parts_join_properties_and_required_names_first_declaration_wins():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "allOf": [
            {"properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}, "required": ["b", "a"]},
            {"properties": {"c": {"const": 1}}, "required": ["c", "b"]},
        ],
    }
    assert example(schema, prompt=PROMPT, param="p") == {"a": 2, "b": True, "c": 1}
