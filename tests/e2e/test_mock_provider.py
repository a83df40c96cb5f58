"""The embedded mock provider through a real Daphne process, driven by the OpenAI SDK."""

from __future__ import annotations

import openai
import pytest

from accounting.models import UsageRecord
from tests.conftest import mock_echo_yaml, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MOCK = mock_echo_yaml(input_per_million="1", output_per_million="2")


def test_mock_echo_chat_and_usage_record(gateway_factory, configure, make_key):
    configure(MOCK)
    key = make_key("demo")
    gateway = gateway_factory()
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0)

    completion = client.chat.completions.create(
        model="mock-echo", messages=[{"role": "user", "content": "Hello there"}]
    )

    assert completion.choices[0].message.content == "This is mock-echo. You said: Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 11)
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.tenant_name == "demo"
    assert (record.prompt_tokens, record.completion_tokens, record.status) == (8, 11, 200)
    # 8 prompt tokens at $1/M + 11 completion tokens at $2/M
    assert str(record.cost_usd.normalize()) == "0.00003"
    assert UsageRecord.objects.count() == 1
