"""Claude Code against the gateway: its requests (tests/fixtures/messages/) replayed through an
Anthropic deployment (sent on as written) and an OpenAI one (translated), and the Claude Code
CLI itself run in print mode with ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_AUTH_TOKEN`` on the
gateway. The CLI comes from the npm registry into a folder outside the repository
(``GATEWAY_TEST_CLAUDE_CODE_DIR``, default ``~/.cache/gateway-tests/claude-code``), installed
on first use; the test is skipped, saying why, only when npm cannot install it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from providers.translation.native_body import with_model
from tests.conftest import ROOT
from tests.e2e.conftest import records
from tests.e2e.messages_gateway import MessagesGateway, deployment_yaml, stream_event_names
from tests.fakes.anthropic_upstream import AnthropicReply, FakeAnthropicUpstream, ToolUse
from tests.fakes.openai_upstream import FakeOpenAIUpstream, FakeToolCall, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIXTURES = ROOT / "tests" / "fixtures" / "messages"
CLAUDE_MODEL = "claude-sonnet-4-5"  # the name Claude Code sends, mapped in the configuration
UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
TRANSLATED_MODEL = "claude-on-openai"
ANTHROPIC_KEY = "sk-ant-e2e-SECRET-0123456789"
CLI_PACKAGE = "@anthropic-ai/claude-code@^2.1"


def fixture(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def upstreams():
    anthropic_fake, openai_fake = (
        FakeAnthropicUpstream(api_key=ANTHROPIC_KEY).start(),
        FakeOpenAIUpstream().start(),
    )
    yield anthropic_fake, openai_fake
    anthropic_fake.stop()
    openai_fake.stop()


@pytest.fixture
def gw(upstreams, start_messages) -> MessagesGateway:
    anthropic_fake, openai_fake = upstreams
    config = f"""
providers:
  - name: anthropic
    kind: anthropic
    base_url: {anthropic_fake.base_url}
    api_key_env: GW_E2E_ANTHROPIC_KEY
  - name: openai
    kind: openai
    base_url: {openai_fake.base_url}
models:
  - name: {CLAUDE_MODEL}
    deployments:
{deployment_yaml(provider="anthropic", model=UPSTREAM_MODEL)}
  - name: {TRANSLATED_MODEL}
    deployments:
{deployment_yaml(provider="openai", model="gpt-4.1")}
"""
    return start_messages(config, env={"GW_E2E_ANTHROPIC_KEY": ANTHROPIC_KEY})


def replay(gw: MessagesGateway, name: str, *, model: str = CLAUDE_MODEL) -> tuple[bytes, bytes]:
    """POST a recorded request (its body with ``model``) as Claude Code would; the bytes sent
    and the SSE body received."""
    recorded = fixture(name)
    body = with_model(json.dumps(recorded["body"], ensure_ascii=False).encode(), model)
    headers = {**recorded["headers"], "authorization": f"Bearer {gw.key.raw}"}  # type: ignore[dict-item]
    with gw.http.stream("POST", str(recorded["path"]), content=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return body, response.read()


@pytest.mark.parametrize("name", ["claude_code_first_turn", "claude_code_tool_turn"])
def test_recorded_requests_pass_through_to_anthropic(gw, upstreams, name):
    anthropic_fake, _ = upstreams
    anthropic_fake.enqueue(
        AnthropicReply(
            text="The parser splits on commas.",
            thinking="Look at parse().",
            tool_uses=(ToolUse("toolu_02", "Read", {"file_path": "/home/dev/project/src/app.py"}),),
            cache_read=900,
            cache_creation=120,
        )
    )
    sent, streamed = replay(gw, name)
    [received] = anthropic_fake.requests
    assert received.raw == with_model(sent, UPSTREAM_MODEL)
    assert received.headers["anthropic-beta"] == fixture(name)["headers"]["anthropic-beta"]  # type: ignore[index]
    assert received.headers["x-api-key"] == ANTHROPIC_KEY
    assert anthropic_fake.violations == []
    names = stream_event_names(streamed)
    assert (names[0], names[1], names[-2], names[-1]) == (
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    )
    assert b'"type":"signature_delta"' in streamed.replace(b" ", b"")
    [row] = records(1)
    assert (row.endpoint, row.streamed, row.cached_tokens, row.cache_write_tokens) == (
        "messages",
        True,
        900,
        120,
    )


def test_recorded_tool_turn_translated_for_openai(gw, upstreams):
    _, openai_fake = upstreams
    openai_fake.enqueue(
        Reply(content=None, tool_calls=(FakeToolCall("call_5", "Bash", '{"command": "pytest"}'),))
    )
    _, streamed = replay(gw, "claude_code_tool_turn", model=TRANSLATED_MODEL)
    assert stream_event_names(streamed)[-2:] == ["message_delta", "message_stop"]
    assert b'"stop_reason":"tool_use"' in streamed
    [received] = openai_fake.requests
    body = received.body
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "Read",
        "arguments": '{"file_path":"/home/dev/project/tests/test_parse.py"}',
    }
    assert body["messages"][3]["tool_call_id"] == "toolu_01ReadTest"
    assert [t["function"]["name"] for t in body["tools"]] == ["Read", "Bash", "Edit"]
    assert body["tools"][0]["function"]["parameters"]["required"] == ["file_path"]
    assert set(body) == {"model", "messages", "max_tokens", "stream", "stream_options", "tools", "user"}
    assert json.loads(body["user"])["session_id"] == "0b8e6c2a-4d1f-4a7e-9c3b-5e2f1a0d7c64"


def claude_code_cli() -> Path:
    """The CLI from the cache folder, installed there with npm on first use."""
    folder = Path(
        os.environ.get("GATEWAY_TEST_CLAUDE_CODE_DIR", Path.home() / ".cache/gateway-tests/claude-code")
    )
    binary = folder / "node_modules" / ".bin" / "claude"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so the Claude Code CLI cannot be installed")
    folder.mkdir(parents=True, exist_ok=True)
    install = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", CLI_PACKAGE]
    result = subprocess.run(install, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not binary.exists():
        pytest.skip(f"npm could not install {CLI_PACKAGE}: {result.stderr.strip()[-500:]}")
    return binary


def run_cli(gw: MessagesGateway, tmp_path: Path, *, prompt: str, model: str) -> dict[str, object]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gw.gateway.base_url,
        "ANTHROPIC_AUTH_TOKEN": gw.key.raw,
        "ANTHROPIC_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    command = [str(claude_code_cli()), "-p", prompt, "--output-format", "json"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_claude_code_cli_in_print_mode(gw, upstreams, tmp_path):
    anthropic_fake, openai_fake = upstreams
    anthropic_fake.enqueue(
        AnthropicReply(text="Hello from the gateway.", thinking="Greet back.", cache_read=50)
    )
    answer = run_cli(gw, tmp_path, prompt="Say hello", model=CLAUDE_MODEL)
    assert (answer["is_error"], answer["result"]) == (False, "Hello from the gateway.")
    [received] = [r for r in anthropic_fake.requests if r.path == "/v1/messages"]
    body = received.body
    assert body["stream"] is True and body["model"] == UPSTREAM_MODEL
    assert body["thinking"]["type"] == "enabled"
    assert "claude-code-20250219" in received.headers["anthropic-beta"]
    assert any("cache_control" in block for block in body["system"])
    assert all("input_schema" in tool for tool in body["tools"])
    assert "session_id" in json.loads(body["metadata"]["user_id"])
    assert received.headers["x-api-key"] == ANTHROPIC_KEY
    assert anthropic_fake.violations == []

    openai_fake.enqueue(Reply(content="Hello, translated."))
    answer = run_cli(gw, tmp_path, prompt="Say hello", model=TRANSLATED_MODEL)
    assert (answer["is_error"], answer["result"]) == (False, "Hello, translated.")
    assert [r.model for r in records(2)] == [CLAUDE_MODEL, TRANSLATED_MODEL]
