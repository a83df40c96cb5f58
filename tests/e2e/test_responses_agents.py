"""The OpenAI Agents SDK (``openai-agents``), a real Responses API client nobody here wrote,
running an agent with a function tool against the gateway over two turns: its default model
class (``OpenAIResponsesModel``) on the built-in mock provider, which calls a tool named in the
prompt and answers with the tool's result once it has it."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from stored_responses.models import StoredResponse
from tests.conftest import mock_echo_yaml
from tests.e2e.conftest import records

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("chained", [False, True], ids=["full-history", "previous-response-id"])
def test_agent_with_a_function_tool_over_two_turns(
    gateway_factory, configure, make_key, chained: bool
) -> None:
    configure(mock_echo_yaml())
    key = make_key("acme")
    gateway = gateway_factory()
    calls: list[str] = []

    @function_tool
    def lookup_order(order: str) -> str:
        """Look an order up by its reference."""
        calls.append(order)
        return f"order {len(calls)} shipped"

    async def run() -> tuple[str, str]:
        set_tracing_disabled(True)
        client = AsyncOpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0)
        agent = Agent(
            name="support",
            instructions="You answer questions about orders.",
            tools=[lookup_order],
            model=OpenAIResponsesModel(model="mock-echo", openai_client=client),
        )
        config = RunConfig(tracing_disabled=True)
        first = await Runner.run(
            agent, "Please lookup_order A-17", run_config=config, auto_previous_response_id=chained
        )
        follow_up = [*first.to_input_list(), {"role": "user", "content": "And lookup_order B-2 too"}]
        second_input = [{"role": "user", "content": "And lookup_order B-2 too"}] if chained else follow_up
        second = await Runner.run(
            agent,
            second_input,
            run_config=config,
            previous_response_id=first.last_response_id if chained else None,
        )
        await client.close()
        return str(first.final_output), str(second.final_output)

    first, second = asyncio.run(run())
    assert calls == ["Please lookup_order A-17", "And lookup_order B-2 too"]
    assert first == "This is mock-echo. lookup_order returned: order 1 shipped"
    assert second == "This is mock-echo. lookup_order returned: order 2 shipped"
    # each turn is a tool call and the answer quoting it: four requests, four records
    rows = records(4)
    assert [r.endpoint for r in rows] == ["responses"] * 4
    assert all(r.status == 200 for r in rows)
    assert StoredResponse.objects.count() == 4
