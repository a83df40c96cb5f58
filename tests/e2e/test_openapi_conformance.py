"""Schemathesis against OpenAI's own OpenAPI description (the subset the gateway serves, in
tests/fixtures/openapi/): requests generated from the spec's request schemas (valid ones, and
for the two bodies also invalid ones) go to a live gateway (Daphne) in front of the built-in
mock provider, with a valid key. Whatever is sent, the gateway never answers 5xx; every error is
OpenAI's error object; every success, JSON or each chunk of a stream, validates against the
spec's response schema. Generation is derandomized: a run is reproducible."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import mock_echo_yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "openapi" / "openai-gateway.json"
MODEL = "mock-echo"
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Examples per operation and mode: the whole module stays well under a minute on two cores.
RUNS = [
    ("POST", "/chat/completions", POSITIVE, 200),
    ("POST", "/chat/completions", NEGATIVE, 100),
    ("POST", "/embeddings", POSITIVE, 150),
    ("POST", "/embeddings", NEGATIVE, 100),
    ("GET", "/models", POSITIVE, 5),
    ("GET", "/models/{model}", POSITIVE, 50),
]
# The Responses API's operations, checked end to end in tests/e2e/test_responses_api.py.
RESPONSES_OPERATIONS = {
    ("POST", "/responses"),
    ("GET", "/responses/{response_id}"),
    ("DELETE", "/responses/{response_id}"),
    ("GET", "/responses/{response_id}/input_items"),
    ("POST", "/responses/input_tokens"),
}
# The response schema of a successful answer, by operation and content type.
SUCCESS_SCHEMAS = {
    ("POST", "/chat/completions", "application/json"): "CreateChatCompletionResponse",
    ("POST", "/chat/completions", "text/event-stream"): "CreateChatCompletionStreamResponse",
    ("POST", "/embeddings", "application/json"): "CreateEmbeddingResponse",
    ("GET", "/models", "application/json"): "ListModelsResponse",
    ("GET", "/models/{model}", "application/json"): "Model",
}


def load_spec() -> dict[str, object]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


class Validators:
    """A compiled validator per response schema of the spec (by name)."""

    def __init__(self, spec: dict[str, object]) -> None:
        names = {*SUCCESS_SCHEMAS.values(), "ErrorResponse"}
        self._compiled = {name: self._compile(spec, name) for name in names}

    @staticmethod
    def _compile(spec: dict[str, object], name: str) -> jsonschema_rs.Draft202012Validator:
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": f"#/components/schemas/{name}",
            "components": spec["components"],
        }
        return jsonschema_rs.Draft202012Validator(document)

    def errors(self, schema_name: str, instance: object) -> list[str]:
        return [f"{e.instance_path}: {e.message}" for e in self._compiled[schema_name].iter_errors(instance)]


def sse_payloads(text: str) -> list[str]:
    """The ``data:`` payloads of an event stream, ``[DONE]`` included."""
    return [line.removeprefix("data: ") for line in text.split("\n") if line.startswith("data: ")]


def decoded_embeddings(body: dict, sent: object) -> dict:
    """The spec describes embeddings as arrays of numbers only; asked for ``base64``, each one is
    a base64 string of little-endian float32, decoded here so the rest of the answer is checked."""
    if not (isinstance(sent, dict) and sent.get("encoding_format") == "base64"):
        return body
    data = []
    for item in body["data"]:
        raw = base64.b64decode(item["embedding"], validate=True)
        data.append({**item, "embedding": list(struct.unpack(f"<{len(raw) // 4}f", raw))})
    return {**body, "data": data}


def check_response(
    validators: Validators, *, method: str, path: str, response: httpx.Response, sent: object
) -> None:
    status = response.status_code
    assert status < 500, f"{status} for {method} {path} with {sent!r}: {response.text[:2000]}"
    content_type = response.headers.get("content-type", "").split(";")[0]
    if status >= 400:
        assert content_type == "application/json", (status, content_type, sent)
        body = response.json()
        assert validators.errors("ErrorResponse", body) == [], (body, sent)
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
        assert body["error"]["message"] and body["error"]["type"], body
        return
    assert status == 200, (status, sent)
    schema = SUCCESS_SCHEMAS[(method, path, content_type)]
    if content_type == "text/event-stream":
        payloads = sse_payloads(response.text)
        assert payloads[-1] == "[DONE]", payloads[-3:]
        for payload in payloads[:-1]:
            assert validators.errors(schema, json.loads(payload)) == [], (payload, sent)
        return
    body = response.json()
    if path == "/embeddings":
        body = decoded_embeddings(body, sent)
    assert validators.errors(schema, body) == [], (response.text[:2000], sent)


@pytest.fixture
def gateway_client(gateway_factory, configure, make_key) -> Iterator[httpx.Client]:
    """A client of a live gateway serving the mock provider's model, with a valid key."""
    configure(mock_echo_yaml())
    key = make_key("conformance")
    gateway = gateway_factory()
    with httpx.Client(
        base_url=f"{gateway.base_url}/v1", headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
    ) as client:
        yield client


@dataclass(frozen=True)
class Steering:
    """What the test changes in a generated request so that it also reaches the provider: most
    generated model names are unknown (a 404 before any work), and few bodies ask to stream."""

    known_model: bool
    streamed: bool


STEERING = st.builds(Steering, known_model=st.sampled_from([True, False]), streamed=st.booleans())


def send(client: httpx.Client, case: schemathesis.Case, steering: Steering) -> tuple[httpx.Response, object]:
    body = case.body
    path = case.formatted_path
    if case.path == "/models/{model}" and steering.known_model:
        path = f"/models/{MODEL}"
    if case.method == "GET":
        return client.get(path), None
    if isinstance(body, dict) and steering.known_model:
        body = {**body, "model": MODEL}
    if isinstance(body, dict) and case.path == "/chat/completions" and steering.streamed:
        body = {**body, "stream": True}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"}), body


def run_operation(
    schema: schemathesis.BaseSchema,
    validators: Validators,
    client: httpx.Client,
    *,
    run: tuple[str, str, schemathesis.GenerationMode, int],
) -> None:
    method, path, mode, examples = run
    operation = schema[path][method]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode), steering=STEERING)
    def exercise(case: schemathesis.Case, steering: Steering) -> None:
        response, sent = send(client, case, steering)
        check_response(validators, method=method, path=path, response=response, sent=sent)

    exercise()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", RUNS, ids=[f"{m} {p} {mode.value}" for m, p, mode, _ in RUNS])
def test_gateway_conforms_to_openai_spec(gateway_client, run) -> None:
    spec = load_spec()
    schema = schemathesis.openapi.from_dict(spec)
    run_operation(schema, Validators(spec), gateway_client, run=run)


def test_spec_subset_holds_the_served_operations() -> None:
    spec = load_spec()
    served = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert served == {(method, path) for method, path, _, _ in RUNS} | RESPONSES_OPERATIONS
    assert {
        "ErrorResponse",
        "CreateChatCompletionRequest",
        "CreateEmbeddingRequest",
        "CreateResponse",
        "Response",
        "ResponseStreamEvent",
        "ResponseItemList",
        "TokenCountsResource",
    } <= set(spec["components"]["schemas"])
