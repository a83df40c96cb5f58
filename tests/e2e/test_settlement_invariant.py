"""The invariant of an admitted request: settled once and recorded once, whatever raises after
admission. A Daphne gateway (with Redis) whose stages fail on demand (``faulty_gateway``) serves
a tenant with rate limits, parallel slots and a hard cost quota; after each request the test
counts the usage events handed to the outbox for it, drains them itself, and reads every counter
back: no reservation or slot left, spend equal to the recorded costs, token counters equal to
the recorded tokens. Failures before admission leave nothing at all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import orjson
import pytest
import redis
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounting.models import UsageRecord
from accounting.outbox import drain, outbox_stream
from quotas.budget import to_micro
from quotas.models import CostQuota
from tests.conftest import CANARY, IssuedKey, wait_for
from tests.e2e.conftest import UPSTREAM_KEY_ENV
from tests.fakes.openai_upstream import ErrorReply, FakeOpenAIUpstream, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONFIG = """
providers:
  - name: fake-openai
    kind: openai
    base_url: {base_url}
    api_key_env: {env}
models:
  - name: gpt-4o-mini
    cache: {{ttl_seconds: 300, key: full_request}}
    deployments:
      - provider: fake-openai
        model: gpt-4o-mini-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
tiers:
  - name: counted
    algorithm: fixed_window
    requests_per_day: 1000000
    tokens_per_day: 100000000
    max_parallel: 8
tenants:
  - name: invariant
    tier: counted
    quotas:
      - period: month
        limit_usd: "100"
        hard: true
"""

# The upstream's answer: 19 prompt and 3 completion tokens, $0.00000465.
USAGE = FakeUsage(19, 3)
COST = Decimal(19 * 15 + 3 * 60) / Decimal(100_000_000)


@dataclass(frozen=True)
class Case:
    stage: str
    stream: bool
    client_status: int
    record: tuple[int, str] | None  # (status, error_type) of the one record; None: not admitted
    cost: Decimal = Decimal(0)


def _cases() -> list[Case]:
    failed = (500, "server_error")
    cases = [
        Case("estimate", False, 500, None),
        Case("estimate", True, 500, None),
        Case("admit", False, 500, None),
        Case("admit", True, 500, None),
        Case("cache_lookup", False, 500, failed),
        Case("cache_lookup", True, 500, failed),
        Case("adapter_request", False, 500, failed),
        Case("adapter_request", True, 500, failed),
        Case("upstream_send", False, 500, failed),
        Case("upstream_send", True, 500, failed),
        Case("adapter_response", False, 500, failed),
        Case("stream_open", True, 500, failed),
        # the upstream answered: its usage is charged although the client got a 500
        Case("cache_store", False, 500, failed, COST),
        Case("render", False, 500, failed, COST),
        Case("stream_response", True, 500, failed),
        # mid-stream: the client has a 200 and an error event; usage counted from what went
        # through: the prompt "Hello number N" (3 tokens, 9 with the chat framing) and "Hi"
        Case("stream_relay", True, 200, failed, Decimal(9 * 15 + 1 * 60) / Decimal(100_000_000)),
    ]
    for stream in (False, True):
        cases += [
            Case("price", stream, 200, (200, "accounting_error")),
            Case("settle", stream, 200, (200, ""), COST),
            Case("outbox_encode", stream, 200, (200, ""), COST),
            Case("metrics", stream, 200, (200, ""), COST),
            Case("access_log", stream, 200, (200, ""), COST),
        ]
    return cases


CASES = _cases()


@dataclass
class Bench:
    base_url: str
    key: IssuedKey
    prefix: str
    tenant_id: int
    quota_id: int
    redis: redis.Redis
    upstream: FakeOpenAIUpstream
    sent: int = 0

    def request(self, case: Case, *, client_id: str) -> httpx.Response:
        self.sent += 1
        body: dict[str, object] = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"Hello number {self.sent}"}],
        }
        if case.stream:
            body["stream"] = True
        headers = {
            "Authorization": f"Bearer {self.key.raw}",
            "x-request-id": client_id,
            "x-test-fault": case.stage,
        }
        with httpx.Client(timeout=30) as client:
            response = client.post(f"{self.base_url}/v1/chat/completions", json=body, headers=headers)
        return response

    def outbox_events(self, client_id: str) -> list[dict[str, object]]:
        """The usage events appended to the outbox for ``client_id`` (not drained yet)."""
        entries = self.redis.xrange(outbox_stream(self.prefix))
        events = [orjson.loads(fields[b"e"]) for _, fields in entries]
        return [e for e in events if e["client_request_id"] == client_id]

    def drain(self) -> None:
        drain(self.redis, stream=outbox_stream(self.prefix), consumer="test", batch_size=100, claim_idle_ms=1)

    def quota(self) -> tuple[int, int]:
        keys = [
            k
            for k in self.redis.scan_iter(match=f"{self.prefix}{{t{self.tenant_id}}}:q*")
            if b"leases" not in k
        ]
        if not keys:
            return 0, 0
        assert len(keys) == 1
        spent, reserved = self.redis.hmget(keys[0], "spent", "reserved")
        return int(spent or 0), int(reserved or 0)

    def counter(self, pattern: str) -> int:
        keys = list(self.redis.scan_iter(match=f"{self.prefix}{{t{self.tenant_id}}}:t:{pattern}"))
        return sum(int(self.redis.get(k) or 0) for k in keys)

    def slots(self) -> int:
        return sum(self.redis.zcard(k) for k in self.redis.scan_iter(match=f"{self.prefix}*:par"))


@pytest.fixture
def bench(gateway_factory, configure, make_key, redis_prefix) -> Iterator[Bench]:
    upstream = FakeOpenAIUpstream().start()
    upstream.default = Reply(content="Hi there friend", usage=USAGE)
    configure(CONFIG.format(base_url=upstream.base_url, env=UPSTREAM_KEY_ENV))
    key = make_key("invariant")
    gateway = gateway_factory(
        application="tests.e2e.faulty_gateway:application",
        # the outbox is drained by the test, so it can count what each request appended
        GATEWAY_USAGE_DRAIN_SECONDS="3600",
        **{UPSTREAM_KEY_ENV: CANARY},
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    quota = CostQuota.objects.get(tenant__name="invariant")
    yield Bench(
        base_url=gateway.base_url,
        key=key,
        prefix=redis_prefix,
        tenant_id=key.tenant.pk,
        quota_id=quota.pk,
        redis=client,
        upstream=upstream,
    )
    client.close()
    upstream.stop()


def _settled(bench: Bench) -> bool:
    return bench.slots() == 0 and bench.quota()[1] == 0


def run_case(bench: Bench, case: Case, *, client_id: str) -> None:
    """Send one request failing at ``case.stage`` and check everything it left behind."""
    upstream_before = len(bench.upstream.requests)
    response = bench.request(case, client_id=client_id)
    assert response.status_code == case.client_status, response.text
    assert response.headers["x-request-id"] == client_id
    if case.client_status == 500:
        assert response.json()["error"]["code"] == "internal_error"
    if case.stage == "stream_relay":
        assert response.text.endswith('"code":"internal_error"}}\n\n')
    if case.record is None:
        # refused before admission: nothing reserved, sent, appended or recorded
        assert (bench.slots(), bench.quota()[1]) == (0, 0)
        assert len(bench.upstream.requests) == upstream_before
        assert bench.outbox_events(client_id) == []
        assert not UsageRecord.objects.filter(client_request_id=client_id).exists()
        return
    wait_for(lambda: _settled(bench))
    appended = 0 if case.stage in ("outbox_encode", "settle") else 1
    if appended:
        wait_for(lambda: len(bench.outbox_events(client_id)) >= 1)
    assert len(bench.outbox_events(client_id)) == appended
    bench.drain()
    wait_for(lambda: UsageRecord.objects.filter(client_request_id=client_id).exists())
    record = UsageRecord.objects.get(client_request_id=client_id)
    assert (record.status, record.error_type) == case.record
    assert record.cost_usd == case.cost


def assert_counters_match_records(bench: Bench) -> None:
    """Every counter equals what the records say: spend, tokens and requests; nothing reserved."""
    records = list(UsageRecord.objects.all())
    assert bench.quota() == (sum(to_micro(r.cost_usd) for r in records), 0)
    assert bench.counter("tpd:f:*") == sum(r.prompt_tokens + r.completion_tokens for r in records)
    assert bench.counter("rpd:f:*") == len(records)
    assert bench.slots() == 0


@pytest.mark.parametrize("case", CASES, ids=[f"{c.stage}-{'stream' if c.stream else 'json'}" for c in CASES])
def test_a_failure_at_each_stage_settles_once_and_records_once(bench, case):
    run_case(bench, case, client_id="inv-1")
    assert_counters_match_records(bench)


@hypothesis_settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(st.sampled_from(CASES), min_size=2, max_size=6))
def test_any_sequence_of_failures_leaves_the_counters_equal_to_the_records(bench, sequence):
    for case in sequence:
        bench.sent += 1
        run_case(bench, case, client_id=f"seq-{bench.sent}")
    assert_counters_match_records(bench)


def _one_record(bench: Bench, client_id: str) -> UsageRecord:
    wait_for(lambda: _settled(bench) and len(bench.outbox_events(client_id)) >= 1)
    assert len(bench.outbox_events(client_id)) == 1
    bench.drain()
    return UsageRecord.objects.get(client_request_id=client_id)


def test_an_upstream_error_is_settled_at_no_cost_and_recorded_once(bench):
    bench.upstream.enqueue(ErrorReply(status=500, message="upstream broke", type="server_error"))

    response = bench.request(Case("none", False, 502, None), client_id="upstream-error")

    assert response.status_code == 502
    record = _one_record(bench, "upstream-error")
    assert (record.status, record.error_type, record.cost_usd) == (502, "upstream_error", Decimal(0))
    assert bench.quota() == (0, 0)
    assert_counters_match_records(bench)


def test_a_streamed_request_is_settled_with_the_usage_the_upstream_reported(bench):
    response = bench.request(Case("none", True, 200, None), client_id="streamed")

    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    record = _one_record(bench, "streamed")
    assert (record.status, record.prompt_tokens, record.completion_tokens, record.cost_usd) == (
        200,
        19,
        3,
        COST,
    )
    assert bench.quota() == (5, 0)  # $0.00000465, rounded up to the micro-dollar
    assert_counters_match_records(bench)


def test_a_client_leaving_mid_stream_is_settled_once_for_what_it_received(bench):
    words = tuple(" w" for _ in range(40))  # one token each
    bench.upstream.enqueue(Reply(chunks=words, chunk_delay=0.05, usage=USAGE))
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello number 1"}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {bench.key.raw}", "x-request-id": "left"}

    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", f"{bench.base_url}/v1/chat/completions", json=body, headers=headers
        ) as response,
    ):
        data_lines = 0
        for line in response.iter_lines():
            data_lines += line.startswith("data: ")
            if data_lines == 4:  # the role chunk and three words
                break

    record = _one_record(bench, "left")
    assert (record.status, record.error_type, record.usage_estimated) == (499, "client_disconnected", True)
    assert record.prompt_tokens == 9  # "Hello number 1" (3 tokens) framed, counted by the gateway
    assert 3 <= record.completion_tokens < 40
    assert record.cost_usd == Decimal(9 * 15 + record.completion_tokens * 60) / Decimal(100_000_000)
    assert bench.quota() == (to_micro(record.cost_usd), 0)
    assert_counters_match_records(bench)
