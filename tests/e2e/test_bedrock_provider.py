"""End to end through Daphne with the official openai SDK against the fake Bedrock runtime,
which verifies every SigV4 signature with botocore: chat, streaming (binary event stream), a
tool-call round trip, image input, and each error class."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import records
from tests.e2e.vendor_gateway import assert_credentials_rejected, cost, streamed_text, streamed_tool_calls
from tests.fakes.bedrock_upstream import REQUEST_ID, BedrockError, BedrockReply, FakeBedrockUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "claude-on-bedrock"
UPSTREAM_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
SECRET = "wJalrXUtnFEMI-e2e-SECRET"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture
def upstream():
    fake = FakeBedrockUpstream(
        region="eu-central-1", access_key="AKIDE2E", secret_key=SECRET, token="tok-e2e"
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(upstream, start_vendor):
    return start_vendor(
        provider_yaml=f"""  - name: vendor
    kind: bedrock
    base_url: {upstream.base_url}
    region: eu-central-1
    aws_access_key_id_env: GW_E2E_AWS_ID
    aws_secret_access_key_env: GW_E2E_AWS_SECRET
    aws_session_token_env: GW_E2E_AWS_TOKEN""",
        model=MODEL,
        upstream_model=UPSTREAM_MODEL,
        env={"GW_E2E_AWS_ID": "AKIDE2E", "GW_E2E_AWS_SECRET": SECRET, "GW_E2E_AWS_TOKEN": "tok-e2e"},
    )


def test_chat_stream_tool_round_trip_and_image(client: openai.OpenAI, upstream: FakeBedrockUpstream):
    upstream.enqueue(BedrockReply(text="Hi from Bedrock.", input_tokens=20, output_tokens=4, cache_read=100))
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=50,
    )
    assert (reply.id, reply.model) == (f"chatcmpl-{REQUEST_ID}", UPSTREAM_MODEL)
    assert reply.choices[0].message.content == "Hi from Bedrock."
    assert (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
        reply.usage.prompt_tokens_details.cached_tokens,
    ) == (120, 4, 100)
    first = upstream.requests[0]
    assert first.path == "/model/us.anthropic.claude-3-5-haiku-20241022-v1:0/converse"
    assert first.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDE2E/")
    assert first.body == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50},
    }

    upstream.enqueue(BedrockReply(text="One two three"))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert streamed_text(chunks) == "One two three"
    assert (chunks[-1].choices, chunks[-1].usage.completion_tokens) == ([], 6)
    assert upstream.requests[1].path.endswith("/converse-stream")

    upstream.enqueue(BedrockReply(text="", tool_uses=(("tooluse_1", "get_weather", {"city": "Paris"}),)))
    question = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather where this photo was taken?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        ],
    }
    chunks = list(client.chat.completions.create(model=MODEL, messages=[question], tools=[TOOL], stream=True))
    calls = streamed_tool_calls(chunks)
    assert (calls[0].id, calls[0].function.name) == ("tooluse_1", "get_weather")
    assert json.loads("".join(t.function.arguments or "" for t in calls)) == {"city": "Paris"}
    assert upstream.requests[2].body["messages"][0]["content"][1] == {
        "image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}
    }

    upstream.enqueue(BedrockReply(text="21 degrees."))
    final = client.chat.completions.create(
        model=MODEL,
        messages=[
            question,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "tooluse_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tooluse_1", "content": '{"temp_c": 21}'},
        ],
        tools=[TOOL],
    )
    assert final.choices[0].message.content == "21 degrees."
    assert upstream.requests[3].body["messages"][2] == {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "tooluse_1",
                    "content": [{"json": {"temp_c": 21}}],
                    "status": "success",
                }
            }
        ],
    }
    assert upstream.violations == []
    rows = records(4)
    assert rows[0].cost_usd == cost(120, 4, 100)
    assert [r.status for r in rows] == [200, 200, 200, 200]


def test_error_classes(client: openai.OpenAI, upstream: FakeBedrockUpstream):
    def ask(stream=False):
        return client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=stream
        )

    upstream.enqueue(
        BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    )
    with pytest.raises(openai.RateLimitError) as limited:
        ask()
    assert limited.value.body["message"] == "Too many requests, please wait before trying again."

    upstream.enqueue(BedrockError(503, "ServiceUnavailableException", "Service unavailable"))
    with pytest.raises(openai.InternalServerError) as busy:
        ask()
    assert busy.value.status_code == 503

    upstream.enqueue(BedrockError(400, "ValidationException", "Malformed input request"))
    with pytest.raises(openai.BadRequestError) as bad:
        ask()
    assert (bad.value.body["message"], bad.value.body["code"]) == (
        "Malformed input request",
        "ValidationException",
    )

    upstream.secret_key = "rotated"  # the gateway's signature no longer verifies: AWS's 403
    assert_credentials_rejected(ask, secret=SECRET)
    upstream.secret_key = SECRET

    upstream.enqueue(BedrockReply(text="one two three", exception_after=1))
    with pytest.raises(openai.APIError) as mid_stream:
        list(ask(stream=True))
    assert "Too many tokens" in mid_stream.value.message
    assert [r.status for r in records(5)] == [429, 503, 400, 502, 502]


def test_a_rotated_aws_credentials_file_is_used_without_a_restart(start_vendor, tmp_path):
    """Bedrock credentials from a shared-credentials file (as Vault Agent writes temporary ones):
    after the upstream starts accepting only the new key pair and the file is rewritten, the
    running gateway signs with the new pair within the check interval."""
    fake = FakeBedrockUpstream(
        region="eu-central-1", access_key="AKIDFIRST", secret_key=SECRET, token="tok-1"
    )
    fake.start()
    credentials = tmp_path / "aws-credentials"

    def write(key_id: str, secret: str, token: str) -> None:
        staged = credentials.with_suffix(".new")
        staged.write_text(
            f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
            f"aws_session_token = {token}\n"
        )
        staged.replace(credentials)

    write("AKIDFIRST", SECRET, "tok-1")
    try:
        client = start_vendor(
            provider_yaml=f"""  - name: vendor
    kind: bedrock
    base_url: {fake.base_url}
    region: eu-central-1
    aws_credentials_file: {credentials}""",
            model=MODEL,
            upstream_model=UPSTREAM_MODEL,
            env={"GATEWAY_SECRET_FILES_CHECK_SECONDS": "0.2"},
        )

        def ask() -> bool:
            try:
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
            except openai.APIStatusError:
                return False
            return True

        assert ask()
        second = "second-SECRET-" + "z" * 16
        fake.access_key, fake.secret_key, fake.token = "AKIDSECOND", second, "tok-2"
        assert not ask()  # still signing with the first pair: the upstream refuses it
        write("AKIDSECOND", second, "tok-2")
        wait_for(ask, timeout=15, interval=0.3)
        signed = [r.headers["authorization"].split("Credential=")[1].split("/")[0] for r in fake.requests]
        assert signed[0] == "AKIDFIRST" and signed[-1] == "AKIDSECOND"
        assert fake.requests[-1].headers["x-amz-security-token"] == "tok-2"
    finally:
        fake.stop()
