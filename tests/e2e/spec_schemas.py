"""OpenAI's published schemas (the vendored subset in tests/fixtures/openapi/), compiled on
first use, to check bodies and stream events the gateway sends."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema_rs

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "openapi" / "openai-gateway.json"


@functools.cache
def _components() -> dict[str, object]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))["components"]


@functools.cache
def _validator(name: str) -> jsonschema_rs.Draft202012Validator:
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{name}",
        "components": _components(),
    }
    return jsonschema_rs.Draft202012Validator(document)


def spec_errors(name: str, instance: object) -> list[str]:
    """What in ``instance`` breaks the spec's schema ``name`` (empty: it validates)."""
    return [f"{e.instance_path}: {e.message}" for e in _validator(name).iter_errors(instance)]


def sse_events(text: str) -> list[tuple[str, dict]]:
    """An event stream's ``(event, data)`` pairs, in order."""
    events = []
    for block in text.split("\n\n"):
        lines = block.strip().split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = next((line[6:] for line in lines if line.startswith("data: ")), None)
        if data is not None:
            events.append((name, json.loads(data)))
    return events


# The spec's schema of each stream event the gateway sends, by its type.
EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
}


def event_errors(event: dict) -> list[str]:
    """What in a stream event breaks the spec: its own event schema, and the union of all."""
    own = EVENT_SCHEMAS.get(event.get("type", ""), "ResponseStreamEvent")
    return spec_errors(own, event) or spec_errors("ResponseStreamEvent", event)
