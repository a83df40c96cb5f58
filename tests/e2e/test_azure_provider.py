"""End to end through Daphne with the official openai SDK against the fake Azure OpenAI
resource: chat, streaming (filter-only chunk dropped), tool calls, image input, content filter
(finish reason and filtered prompt) and the error classes."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import records
from tests.e2e.vendor_gateway import assert_credentials_rejected, cost, streamed_text
from tests.fakes.azure_upstream import AzureError, FakeAzureUpstream, content_filter_error
from tests.fakes.openai_upstream import FakeToolCall, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "gpt-4o-azure"
DEPLOYMENT = "gpt4o-prod"
KEY = "azure-e2e-SECRET-0123456789"


@pytest.fixture
def upstream():
    fake = FakeAzureUpstream(api_key=KEY, api_version="2025-01-01-preview").start()
    yield fake
    fake.stop()


@pytest.fixture
def client(upstream, start_vendor):
    return start_vendor(
        provider_yaml=f"""  - name: vendor
    kind: azure
    base_url: {upstream.base_url}
    api_version: "2025-01-01-preview"
    api_key_env: GW_E2E_AZURE_KEY""",
        model=MODEL,
        upstream_model=DEPLOYMENT,
        env={"GW_E2E_AZURE_KEY": KEY},
    )


def test_chat_stream_tools_image_and_content_filter(client: openai.OpenAI, upstream: FakeAzureUpstream):
    upstream.enqueue(Reply(content="Hello from Azure", usage=FakeUsage(19, 3, cached_tokens=4)))
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}]
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello from Azure"
    assert reply.model == "gpt-4o-2024-11-20"
    assert "prompt_filter_results" not in raw.http_response.text
    assert "content_filter_results" not in raw.http_response.text
    first = upstream.requests[0]
    assert first.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert first.query == {"api-version": "2025-01-01-preview"}
    assert first.headers["api-key"] == KEY
    assert first.body == {"model": DEPLOYMENT, "messages": [{"role": "user", "content": "Hi"}]}

    upstream.enqueue(Reply(content="Streaming from Azure"))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.id for c in chunks} == {"chatcmpl-fake0001"}  # the filter-only chunk (id "") is gone
    assert streamed_text(chunks) == "Streaming from Azure"
    assert chunks[-1].usage.prompt_tokens == 19

    call = FakeToolCall(id="call_az1", name="lookup", arguments='{"q":"x"}')
    upstream.enqueue(Reply(content=None, tool_calls=(call,)))
    tool_reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look this up"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            }
        ],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    )
    assert tool_reply.choices[0].finish_reason == "tool_calls"
    assert tool_reply.choices[0].message.tool_calls[0].function.arguments == '{"q":"x"}'
    assert (
        upstream.requests[2].body["messages"][0]["content"][1]["image_url"]["url"]
        == "data:image/png;base64,iVBORw0KGgo="
    )
    upstream.enqueue(Reply(content="Found it."))
    done = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Look this up"},
            tool_reply.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_az1", "content": "result"},
        ],
    )
    assert done.choices[0].message.content == "Found it."
    assert upstream.requests[3].body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_az1",
        "content": "result",
    }

    upstream.enqueue(Reply(content="Here is how", finish_reason="content_filter"))
    filtered = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert filtered.choices[0].finish_reason == "content_filter"
    assert upstream.violations == []
    rows = records(5)
    assert rows[0].cost_usd == cost(19, 3, 4)


def test_error_classes(client: openai.OpenAI, upstream: FakeAzureUpstream):
    def ask():
        return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])

    upstream.enqueue(content_filter_error())
    with pytest.raises(openai.BadRequestError) as filtered:
        ask()
    assert (filtered.value.body["code"], filtered.value.body["param"]) == ("content_filter", "prompt")

    limited_body = {"error": {"code": "429", "message": "Rate limit exceeded. Retry after 6 seconds."}}
    upstream.enqueue(AzureError(429, limited_body, headers={"retry-after": "6", "retry-after-ms": "6000"}))
    with pytest.raises(openai.RateLimitError) as limited:
        ask()
    assert (
        limited.value.response.headers["retry-after"],
        limited.value.response.headers["retry-after-ms"],
    ) == ("6", "6000")
    assert limited.value.body["code"] == "rate_limit_exceeded"

    upstream.enqueue(AzureError(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    with pytest.raises(openai.InternalServerError) as busy:
        ask()
    assert busy.value.status_code == 503

    upstream.enqueue(
        AzureError(404, {"error": {"code": "DeploymentNotFound", "message": "no such deployment"}})
    )
    with pytest.raises(openai.NotFoundError) as missing:
        ask()
    assert missing.value.body["code"] == "DeploymentNotFound"

    upstream.api_key = "rotated"
    assert_credentials_rejected(ask, secret=KEY)
    assert [r.status for r in records(5)] == [400, 429, 503, 404, 502]
