"""A streamed response abandoned before its first chunk was sent (the client went away just
after the view returned) still closes the upstream stream and emits the request's one usage
event, status 499; closing a response whose relay ran records nothing more. The sink counts
what it is handed (a unique request id would hide a second event among the rows), and the
tenant's hard quota is read back: spent exactly the one cost, nothing reserved."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from accounting.models import UsageRecord
from accounting.prices import load_price_table
from accounting.recorder import UsageEvent, UsageWriter
from gateway_site.api.dialects.openai_chat import ChatChunks
from gateway_site.api.exchange import Exchange
from gateway_site.api.settle import AdmittedRequest, Settling
from gateway_site.api.stream import streaming_response
from gateway_site.runtime.usage_sink import UsageSink
from providers.catalog import load_catalog
from providers.http import create_http_client
from quotas.authentication.registry import KeyContext, load_registry
from quotas.limiter import Admission, Limiter
from quotas.policy import Plan, build_plan
from quotas.stores.local import LocalStore
from routing.router import Router
from tests.conftest import openai_provider_yaml, wait_for
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
QUOTA_YAML = """
tenants:
  - name: acme
    quotas:
      - {period: month, limit_usd: "1", hard: true}
"""


class CountingSink(UsageSink):
    """The real sink, noting each event it is handed."""

    def __init__(self, **parts) -> None:
        super().__init__(**parts)
        self.handed: list[str] = []

    def emit(self, event: UsageEvent, **rest) -> None:
        self.handed.append(event.request_id)
        super().emit(event, **rest)


@pytest.fixture
def upstream():
    fake = FakeOpenAIUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture
def setup(upstream, configure, make_key, tmp_path):
    """What a request needs, loaded (synchronously) from the test database."""
    configure(openai_provider_yaml(name="fake", base_url=upstream.base_url) + QUOTA_YAML)
    key = make_key()
    writer = UsageWriter(flush_seconds=0.01, batch_size=10, spool_path=tmp_path / "spool.jsonl")
    limiter = Limiter(LocalStore(), fail_open=True, on_alert=print)
    prices = load_price_table()
    sink = CountingSink(
        writer=writer, limiter=lambda: limiter, prices=lambda: prices, redis_prefix="x:", outbox=False
    )
    yield load_catalog(), load_registry().authenticate(key.raw), sink, limiter
    writer.close()


def _plan(key: KeyContext, request_id: str) -> Plan:
    return build_plan(
        key.limits,
        prefix="x:",
        request_id=request_id,
        model="gpt-4o-mini",
        tokens=100,
        cost_micro=500,
        lease_ms=60_000,
        now=dt.datetime.now(dt.UTC),
        tz=ZoneInfo("UTC"),
    )


async def _quota(limiter: Limiter, plan: Plan) -> tuple[int, int]:
    [state] = await limiter.store.quota_states(plan.quotas)
    return state.spent, state.reserved


async def _serve(setup, *, request_id: str, read: bool) -> tuple[AdmittedRequest, int, tuple[int, int]]:
    """Serve one streamed request admitted against the tenant's quota; returns the request, how
    many closings were spawned, and the quota's (spent, reserved) once it ended."""
    catalog, key, sink, limiter = setup
    router = Router(
        client=create_http_client(max_connections=4, timeout_seconds=5, connect_timeout=1), default_timeout=5
    )
    route_plan = router.plan(catalog.models["gpt-4o-mini"], catalog=catalog)
    plan = _plan(key, request_id)
    admission: Admission = await limiter.admit(plan)
    assert await _quota(limiter, plan) == (0, 500)
    admitted = AdmittedRequest(
        sink=sink,
        exchange=Exchange(request_id=request_id, client_request_id=""),
        key=key,
        model="gpt-4o-mini",
        route_plan=route_plan,
        body=BODY,
        streamed=True,
        admission=admission,
    )
    assert admitted.exchange.tracked  # admitted: the access line and the request metric come from its end
    stream = await router.open_stream(route_plan, BODY, request_id=request_id)
    closing: list[asyncio.Task[None]] = []
    response = streaming_response(
        stream,
        Settling(admitted),
        encoder=ChatChunks(include_usage=False),
        spawn=lambda work: closing.append(asyncio.create_task(work)),
    )
    if read:
        async for _ in response.streaming_content:
            pass
    response.close()  # as the server does once the response is over, sent or not
    response.close()
    await asyncio.gather(*closing)
    await limiter.drain()
    quota = await _quota(limiter, plan)
    await router.aclose()
    return admitted, len(closing), quota


def test_a_response_closed_before_its_first_chunk_records_the_request_once(setup, upstream):
    upstream.default = Reply(content="one two three four", chunk_delay=0.5)

    admitted, closings, quota = asyncio.run(_serve(setup, request_id="req_abandoned", read=False))

    assert closings == 1
    assert admitted.finished
    assert setup[2].handed == ["req_abandoned"]
    wait_for(lambda: UsageRecord.objects.count() == 1)
    assert list(UsageRecord.objects.values_list("request_id", "status", "streamed", "cost_usd")) == [
        ("req_abandoned", 499, True, Decimal("0.00000105"))  # the prompt "hi": 7 tokens framed; no reply
    ]
    assert quota == (2, 0)  # micro-dollars, rounded up
    wait_for(lambda: upstream.client_disconnects == 1)  # the upstream stream was closed early
    assert len(upstream.requests) == 1


def test_closing_a_response_whose_relay_ran_records_nothing_more(setup, upstream):
    admitted, closings, quota = asyncio.run(_serve(setup, request_id="req_read", read=True))

    assert closings == 0
    assert admitted.finished
    assert setup[2].handed == ["req_read"]
    wait_for(lambda: UsageRecord.objects.count() == 1)
    # The fake upstream's usage: 19 prompt and 3 completion tokens at $0.15 and $0.60 a million.
    assert list(UsageRecord.objects.values_list("request_id", "status", "cost_usd")) == [
        ("req_read", 200, Decimal("0.00000465"))
    ]
    assert quota == (5, 0)
    assert upstream.client_disconnects == 0
