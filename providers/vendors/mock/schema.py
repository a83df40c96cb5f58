"""Deterministic JSON values for a JSON Schema: the mock provider's tool-call arguments and
structured outputs.

A value is derived from the prompt where the schema allows it (strings carry the prompt's text,
numbers take the prompt's numbers in order, an enum takes the first of its values the prompt
mentions) and from the schema otherwise (``const``, the first ``enum`` value, ``format``
examples, the bounds). Objects carry every declared property and nothing else; ``$ref`` (local
JSON pointers), ``allOf``, ``anyOf`` / ``oneOf`` (the first branch), type lists and
``prefixItems`` are followed. ``pattern`` and ``uniqueItems`` are not honoured.

The work is bounded whatever the client sends: at most ``MAX_STEPS`` values and references per
schema, ``MAX_DEPTH`` levels, strings of at most ``MAX_STRING_CHARS``. Past ``SHALLOW_DEPTH``
optional properties and optional array items are left out and a ``null`` branch is preferred,
so a recursive schema ends; one that cannot end is a 400."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from itertools import islice

from providers.errors import UnsupportedRequest
from providers.translation.upstream import JsonObject

MAX_STEPS = 512
MAX_DEPTH = 24
SHALLOW_DEPTH = 6
MAX_STRING_CHARS = 1024
PROMPT_EXCERPT_CHARS = 200
MAX_PROMPT_NUMBERS = 64

_WORD = re.compile(r"[\w-]+")
_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d{1,15})?")  # longer runs are several numbers
# Integers beyond this are sent as floats: orjson writes at most 64-bit integers, and JSON
# readers commonly hold numbers as doubles.
_EXACT_INTEGER = Decimal(2**53)

# One fixed, valid example per common ``format``.
FORMAT_EXAMPLES = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True, slots=True)
class Prompt:
    """What values are derived from: the text (an excerpt), its words (lower case) and numbers."""

    text: str
    words: frozenset[str]
    numbers: tuple[Decimal, ...]


def prompt_of(text: str) -> Prompt:
    numbers = (Decimal(m.group()) for m in _NUMBER.finditer(text))
    return Prompt(
        text=text.strip()[:PROMPT_EXCERPT_CHARS],
        words=frozenset(word.lower() for word in _WORD.findall(text)),
        numbers=tuple(islice(numbers, MAX_PROMPT_NUMBERS)),
    )


def example(schema: JsonObject, *, prompt: Prompt, param: str) -> object:
    """A value valid against ``schema``; ``param`` names the schema in a 400 it may raise."""
    return _Generator(root=schema, prompt=prompt, param=param).value(schema, depth=0, name="")


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: Decimal | None
    low_open: bool
    high: Decimal | None
    high_open: bool
    step: Decimal | None
    integral: bool

    def admits(self, value: Decimal) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        if self.integral and value != value.to_integral_value():
            return False
        try:
            return self.step is None or value % self.step == 0
        except InvalidOperation:  # a quotient too large to hold: not a multiple we can vouch for
            return False

    def candidates(self) -> Iterator[Decimal]:
        """Values worth trying when the prompt has no number that fits, nicest first."""
        yield from (Decimal(0), Decimal(1))
        edges = [edge for edge in (self.low, self.high) if edge is not None]
        if self.low is not None and self.high is not None:
            edges.append((self.low + self.high) / 2)
        step = self.step or (Decimal(1) if self.integral else None)
        for edge in edges:
            if step is None:
                yield from (edge, edge + 1, edge - 1)
            else:
                up = _snap(edge, step=step, rounding=ROUND_CEILING)
                down = _snap(edge, step=step, rounding=ROUND_FLOOR)
                yield from (up, down, up + step, down - step)


def _snap(value: Decimal, *, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _edge(schema: JsonObject, *, closed_key: str, open_key: str, lower: bool) -> tuple[Decimal | None, bool]:
    """One bound and whether it is exclusive (a number, or draft 4's ``true`` beside the bound)."""
    closed, opened = _decimal(schema.get(closed_key)), schema.get(open_key)
    if opened is True:
        return closed, closed is not None
    bound = _decimal(opened)
    if bound is not None and (closed is None or (bound >= closed if lower else bound <= closed)):
        return bound, True
    return closed, False


def _bounds(schema: JsonObject, *, integer: bool) -> _Bounds:
    low, low_open = _edge(schema, closed_key="minimum", open_key="exclusiveMinimum", lower=True)
    high, high_open = _edge(schema, closed_key="maximum", open_key="exclusiveMaximum", lower=False)
    step = _decimal(schema.get("multipleOf"))
    return _Bounds(
        low=low,
        low_open=low_open,
        high=high,
        high_open=high_open,
        step=step if step is not None and step > 0 else None,
        integral=integer,
    )


class _Generator:
    """One schema's generation: the steps spent and the prompt numbers used so far."""

    def __init__(self, *, root: JsonObject, prompt: Prompt, param: str) -> None:
        self._root, self._prompt, self._param = root, prompt, param
        self._steps = 0
        self._numbers_used = 0

    def _refuse(self, reason: str) -> UnsupportedRequest:
        return UnsupportedRequest(f"The mock provider cannot fill this schema: {reason}.", param=self._param)

    def _spend(self, depth: int) -> None:
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise self._refuse(f"it needs more than {MAX_STEPS} values and references")
        if depth > MAX_DEPTH:
            raise self._refuse(f"it nests deeper than {MAX_DEPTH} levels")

    def value(self, schema: JsonObject, *, depth: int, name: str) -> object:
        self._spend(depth)
        schema = self._resolve(schema, depth=depth)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._pick(enum)
        branches = [b for b in _list(schema.get("anyOf") or schema.get("oneOf")) if isinstance(b, dict)]
        if branches:
            return self.value(self._branch(branches, depth=depth), depth=depth + 1, name=name)
        kind = _type_of(schema, shallow=depth >= SHALLOW_DEPTH)
        if kind == "object":
            return self._object(schema, depth=depth)
        if kind == "array":
            return self._array(schema, depth=depth, name=name)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name=name)

    def _resolve(self, schema: JsonObject, *, depth: int) -> JsonObject:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged in."""
        while isinstance(schema.get("$ref"), str):
            self._spend(depth)
            target = self._pointer(str(schema["$ref"]))
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        parts = [p for p in _list(schema.get("allOf")) if isinstance(p, dict)]
        if not parts:
            return schema
        resolved: list[JsonObject] = []
        for part in parts:
            self._spend(depth + 1)  # before recursing, so nested allOf stops at MAX_DEPTH
            resolved.append(self._resolve(part, depth=depth + 1))
        return _merged({k: v for k, v in schema.items() if k != "allOf"}, parts=resolved)

    def _pointer(self, ref: str) -> JsonObject:
        node: object = self._root
        if not ref.startswith("#"):
            raise self._refuse(f"'$ref' '{ref[:100]}' is not a local reference ('#/...')")
        for token in (t.replace("~1", "/").replace("~0", "~") for t in ref[1:].split("/")[1:]):
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                node = None
        if not isinstance(node, dict):
            raise self._refuse(f"'$ref' '{ref[:100]}' does not point to a schema")
        return node

    def _branch(self, branches: list[JsonObject], *, depth: int) -> JsonObject:
        if depth >= SHALLOW_DEPTH:
            for branch in branches:
                if branch.get("type") == "null":
                    return branch
        return branches[0]

    def _pick(self, values: list[object]) -> object:
        for value in values:
            if isinstance(value, str) and value.lower() in self._prompt.words:
                return value
        return values[0]

    def _object(self, schema: JsonObject, *, depth: int) -> JsonObject:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = dict.fromkeys(r for r in _list(schema.get("required")) if isinstance(r, str))
        names = [*properties, *(r for r in required if r not in properties)]
        if depth >= SHALLOW_DEPTH:
            names = [n for n in names if n in required]
        extra = schema.get("additionalProperties")
        result: JsonObject = {}
        for name in names:
            sub = properties.get(name, extra)
            result[name] = self.value(sub if isinstance(sub, dict) else {}, depth=depth + 1, name=name)
        return result

    def _array(self, schema: JsonObject, *, depth: int, name: str) -> list[object]:
        prefix, rest = _item_schemas(schema)
        low, high = _count(schema.get("minItems")), _count(schema.get("maxItems"))
        count = max(low or 0, int(depth < SHALLOW_DEPTH))
        if high is not None:
            count = min(count, high)
        if rest is None:
            count = min(count, len(prefix))
        result: list[object] = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else rest
            result.append(self.value(sub or {}, depth=depth + 1, name=name))
        return result

    def _number(self, schema: JsonObject, *, integer: bool) -> int | float:
        bounds = _bounds(schema, integer=integer)
        numbers = self._prompt.numbers
        candidate = numbers[self._numbers_used] if self._numbers_used < len(numbers) else None
        self._numbers_used += 1
        tries = bounds.candidates() if candidate is None else iter([candidate, *bounds.candidates()])
        chosen = next((value for value in tries if bounds.admits(value)), Decimal(0))
        exact = chosen == chosen.to_integral_value() and abs(chosen) <= _EXACT_INTEGER
        return int(chosen) if exact else float(chosen)

    def _string(self, schema: JsonObject, *, name: str) -> str:
        fmt = schema.get("format")
        text = FORMAT_EXAMPLES.get(fmt, "") if isinstance(fmt, str) else ""
        text = text or self._prompt.text or name or "mock"
        longest, shortest = _count(schema.get("maxLength")), _count(schema.get("minLength"))
        if longest is not None:
            text = text[:longest]
        if shortest is not None and shortest > len(text):
            text = text.ljust(min(shortest, MAX_STRING_CHARS), ".")
        return text[:MAX_STRING_CHARS]


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _item_schemas(schema: JsonObject) -> tuple[list[JsonObject], JsonObject | None]:
    """An array's positional item schemas, and the schema of the items after them (None: none
    allowed). 2020-12 says ``prefixItems`` + ``items``; drafts 4-7 a list ``items`` +
    ``additionalItems``."""
    items = schema.get("items")
    if "prefixItems" in schema:
        prefix, rest = schema["prefixItems"], items
    elif isinstance(items, list):
        prefix, rest = items, schema.get("additionalItems")
    else:
        prefix, rest = [], items
    positional = [p if isinstance(p, dict) else {} for p in _list(prefix)]
    return positional, None if rest is False else (rest if isinstance(rest, dict) else {})


def _type_of(schema: JsonObject, *, shallow: bool) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [k for k in kind if isinstance(k, str)]
        concrete = [k for k in names if k != "null"]
        return "null" if (shallow and "null" in names) or not concrete else concrete[0]
    if isinstance(kind, str):
        return kind
    if any(key in schema for key in ("properties", "required", "additionalProperties")):
        return "object"
    if any(key in schema for key in ("items", "prefixItems")):
        return "array"
    return "string"


def _merged(schema: JsonObject, *, parts: list[JsonObject]) -> JsonObject:
    """``schema`` with its ``allOf`` parts folded in: properties and required names join (the
    first schema to declare a property wins), any other keyword the first to set it."""
    merged = dict(schema)
    properties: JsonObject = {}
    required: dict[str, None] = {}
    for source in (schema, *parts):
        declared = source.get("properties")
        for name, sub in declared.items() if isinstance(declared, dict) else ():
            properties.setdefault(name, sub)
        required.update(dict.fromkeys(r for r in _list(source.get("required")) if isinstance(r, str)))
        for key, value in source.items():
            merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = list(required)
    return merged
