"""The Responses API end to end: Daphne in front of the built-in mock provider, driven by the
official ``openai`` SDK (and raw HTTP where the wire itself is asserted). Every body and every
stream event is checked against OpenAI's published schemas; usage records name the endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from pydantic import BaseModel

from stored_responses.models import StoredResponse
from tests.conftest import IssuedKey, mock_echo_yaml
from tests.e2e.conftest import records
from tests.e2e.spec_schemas import event_errors, spec_errors, sse_events

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "mock-echo"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclass
class Gateway:
    client: openai.OpenAI
    http: httpx.Client
    key: IssuedKey
    base_url: str


@pytest.fixture
def gateway(gateway_factory, configure, make_key) -> Iterator[Gateway]:
    configure(mock_echo_yaml())
    key = make_key("acme")
    process = gateway_factory()
    client = openai.OpenAI(base_url=f"{process.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
    http = httpx.Client(base_url=process.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30)
    yield Gateway(client=client, http=http, key=key, base_url=process.base_url)
    client.close()
    http.close()


def valid_response(body: dict) -> dict:
    assert spec_errors("Response", body) == []
    return body


def test_text_response_is_the_spec_object_stored_and_recorded(gateway: Gateway) -> None:
    raw = gateway.http.post(
        "/v1/responses",
        json={"model": MODEL, "input": "Hello there", "instructions": "Be brief.", "metadata": {"k": "v"}},
    )
    assert raw.status_code == 200, raw.text
    body = valid_response(raw.json())
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert (body["status"], body["incomplete_details"], body["error"]) == ("completed", None, None)
    assert (body["model"], body["instructions"], body["metadata"], body["store"]) == (
        MODEL,
        "Be brief.",
        {"k": "v"},
        True,
    )
    [message] = body["output"]
    assert (message["type"], message["role"], message["status"]) == ("message", "assistant", "completed")
    assert message["content"] == [
        {
            "type": "output_text",
            "text": "This is mock-echo. You said: Hello there",
            "annotations": [],
            "logprobs": [],
        }
    ]
    usage = body["usage"]
    [record] = records(1)
    assert (record.endpoint, record.status, record.streamed) == ("responses", 200, False)
    assert (usage["input_tokens"], usage["output_tokens"]) == (record.prompt_tokens, record.completion_tokens)
    assert usage["total_tokens"] == record.prompt_tokens + record.completion_tokens
    assert usage["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    stored = StoredResponse.objects.get()
    assert (stored.id, stored.tenant_id, stored.key_id) == (
        body["id"],
        gateway.key.tenant.pk,
        gateway.key.key_id,
    )
    # sealed at rest: neither the prompt nor the answer is readable in the row
    assert "Hello there" not in stored.response_sealed + stored.items_sealed
    assert "mock-echo" not in stored.response_sealed
    assert gateway.client.responses.retrieve(body["id"]).model_dump(exclude_none=True)[
        "output"
    ] == json.loads(json.dumps(body["output"]))


def test_sdk_create_output_text_and_store_false_writes_nothing(gateway: Gateway) -> None:
    response = gateway.client.responses.create(model=MODEL, input="Nothing kept", store=False)
    assert response.output_text == "This is mock-echo. You said: Nothing kept"
    [record] = records(1)
    assert record.endpoint == "responses"
    assert StoredResponse.objects.count() == 0
    with pytest.raises(openai.NotFoundError):
        gateway.client.responses.retrieve(response.id)


def test_image_input_reaches_the_model(gateway: Gateway) -> None:
    response = gateway.client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this image?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                ],
            }
        ],
    )
    assert response.output_text == "This is mock-echo. You said: What is in this image?"
    items = gateway.client.responses.input_items.list(response.id)
    [item] = items.data
    assert item.model_dump(exclude_none=True)["content"] == [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": PNG, "detail": "low"},
    ]


class Weather(BaseModel):
    city: str
    celsius: int


def test_json_schema_output_is_parsed_by_the_sdk(gateway: Gateway) -> None:
    parsed = gateway.client.responses.parse(
        model=MODEL, input="Weather in Paris, 21 degrees", text_format=Weather
    )
    assert isinstance(parsed.output_parsed, Weather)
    assert parsed.output_parsed.celsius == 21
    assert parsed.text.format.type == "json_schema"


def test_function_tool_round_trip_with_previous_response_id(gateway: Gateway) -> None:
    first = gateway.client.responses.create(model=MODEL, input="Call get_weather for Paris", tools=[WEATHER])
    [call] = first.output
    assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
    assert json.loads(call.arguments) == {"city": "Call get_weather for Paris"}
    second = gateway.client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 21}'}],
        tools=[WEATHER],
    )
    assert second.output_text == 'This is mock-echo. get_weather returned: {"celsius": 21}'
    assert second.previous_response_id == first.id
    listed = gateway.client.responses.input_items.list(second.id, order="asc")
    assert [item.type for item in listed.data] == ["message", "function_call", "function_call_output"]
    assert listed.data[1].call_id == call.call_id
    assert [r.endpoint for r in records(2)] == ["responses", "responses"]


def test_stream_events_in_order_valid_and_final_response_stored(gateway: Gateway) -> None:
    with gateway.http.stream(
        "POST", "/v1/responses", json={"model": MODEL, "input": "Stream this", "stream": True}
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        text = raw.read().decode()
    events = sse_events(text)
    kinds = [name for name, _ in events]
    for name, data in events:
        assert data["type"] == name
        assert event_errors(data) == [], (name, data)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = kinds.count("response.output_text.delta")
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1][1]["response"]
    text_done = events[-4][1]["text"]
    assert text_done == "This is mock-echo. You said: Stream this"
    assert "".join(d["delta"] for n, d in events if n == "response.output_text.delta") == text_done
    [record] = records(1)
    assert (record.endpoint, record.streamed, record.status) == ("responses", True, 200)
    assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == (
        record.prompt_tokens,
        record.completion_tokens,
    )
    assert valid_response(gateway.http.get(f"/v1/responses/{final['id']}").json()) == final


def test_sdk_stream_helper_and_function_call_events(gateway: Gateway) -> None:
    with gateway.client.responses.stream(model=MODEL, input="Use get_weather now", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "response.function_call_arguments.delta" in kinds
    [call] = final.output
    assert json.loads(call.arguments) == {"city": "Use get_weather now"}


def test_delete_and_other_tenant_answer_404_like_an_unknown_id(gateway: Gateway, make_key) -> None:
    response = gateway.client.responses.create(model=MODEL, input="Mine")
    other = make_key("globex")
    stranger = httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {other.raw}"})
    unknown = gateway.http.get("/v1/responses/resp_0000").json()
    for path in (f"/v1/responses/{response.id}", f"/v1/responses/{response.id}/input_items"):
        refused = stranger.get(path)
        assert refused.status_code == 404
        assert refused.json()["error"]["type"] == unknown["error"]["type"] == "invalid_request_error"
    continued = stranger.post(
        "/v1/responses", json={"model": MODEL, "input": "Go on", "previous_response_id": response.id}
    )
    assert continued.status_code == 404
    assert continued.json()["error"]["param"] == "previous_response_id"
    assert stranger.delete(f"/v1/responses/{response.id}").status_code == 404
    stranger.close()
    assert gateway.http.delete(f"/v1/responses/{response.id}").json() == {
        "id": response.id,
        "object": "response",
        "deleted": True,
    }
    assert gateway.http.get(f"/v1/responses/{response.id}").status_code == 404
    assert StoredResponse.objects.count() == 0
    assert [r.status for r in records(1)] == [200]  # the one answered request; refusals record nothing


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"truncation": "auto"}, "truncation"),
        ({"include": ["file_search_call.results"]}, "include[0]"),
        ({"service_tier": "priority"}, "service_tier"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ],
)
def test_what_the_gateway_cannot_honour_is_a_400_naming_it(gateway: Gateway, extra: dict, param: str) -> None:
    refused = gateway.http.post("/v1/responses", json={"model": MODEL, "input": "hi", **extra})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert spec_errors("ErrorResponse", refused.json()) == []
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    gateway.client.responses.create(model=MODEL, input="after the refusal", store=False)
    [record] = records(1)  # the refused request was never admitted: no record, nothing stored
    assert record.status == 200 and StoredResponse.objects.count() == 0


def test_input_items_pages_with_a_cursor(gateway: Gateway) -> None:
    turns = [{"role": "user", "content": f"turn {n}"} for n in range(5)]
    response = gateway.client.responses.create(model=MODEL, input=turns)
    first = gateway.http.get(f"/v1/responses/{response.id}/input_items", params={"limit": 2}).json()
    assert spec_errors("ResponseItemList", first) == []
    assert [item["content"][0]["text"] for item in first["data"]] == ["turn 4", "turn 3"]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (
        True,
        first["data"][0]["id"],
        first["data"][1]["id"],
    )
    rest = gateway.http.get(
        f"/v1/responses/{response.id}/input_items", params={"limit": 10, "after": first["last_id"]}
    ).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["turn 2", "turn 1", "turn 0"]
    assert rest["has_more"] is False
    every = [item.id for item in gateway.client.responses.input_items.list(response.id, limit=2, order="asc")]
    assert len(every) == 5 and every == [item["id"] for item in reversed(first["data"] + rest["data"])]


def test_input_tokens_counts_without_calling_a_model(gateway: Gateway) -> None:
    counted = gateway.http.post(
        "/v1/responses/input_tokens", json={"model": MODEL, "input": "Count these words please"}
    )
    assert counted.status_code == 200, counted.text
    assert spec_errors("TokenCountsResource", counted.json()) == []
    created = gateway.client.responses.create(model=MODEL, input="Count these words please", store=False)
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": created.usage.input_tokens}
    [record] = records(1)  # the created response's; counting records nothing
    assert record.prompt_tokens == created.usage.input_tokens


def test_a_reply_cut_by_max_output_tokens_is_incomplete(gateway: Gateway) -> None:
    words = " ".join(f"word{n}" for n in range(40))
    body = {"model": MODEL, "input": words, "max_output_tokens": 16}
    cut = valid_response(gateway.http.post("/v1/responses", json=body).json())
    assert (cut["status"], cut["incomplete_details"], cut["completed_at"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
        None,
    )
    assert cut["usage"]["output_tokens"] == 16 and cut["output"][0]["status"] == "incomplete"
    with gateway.http.stream("POST", "/v1/responses", json={**body, "stream": True}) as raw:
        events = sse_events(raw.read().decode())
    assert all(event_errors(data) == [] for _, data in events)
    name, last = events[-1]
    assert name == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["content"][0]["text"] == cut["output"][0]["content"][0]["text"]
