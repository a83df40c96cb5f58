"""Admission control through Daphne: past its in-flight bound a worker sheds a request at once
with a 503 in OpenAI's format and ``retry-after``, before any Redis or upstream call, counted in
``llm_gateway_shed_total``; a stream holds its place until it ends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounting.models import UsageRecord
from tests.conftest import wait_for
from tests.e2e.conftest import MODEL, Proxy, error_body
from tests.e2e.scrape import scrape, value
from tests.fakes.openai_upstream import Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHED = error_body("The gateway is overloaded; please retry shortly.", "server_error", code="overloaded")


def test_requests_past_the_in_flight_bound_are_shed_before_any_work(start_proxy):
    proxy: Proxy = start_proxy(GATEWAY_MAX_IN_FLIGHT="2")
    proxy.upstream.default = Reply(delay=1.0)
    barrier = threading.Barrier(3)

    def one(i: int) -> httpx.Response:
        barrier.wait()
        return proxy.http.post("/v1/chat/completions", json=proxy.chat_body(f"request {i}"))

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(one, range(3)))

    assert sorted(r.status_code for r in responses) == [200, 200, 503]
    [shed] = [r for r in responses if r.status_code == 503]
    assert shed.json() == SHED
    assert shed.headers["retry-after"] == "1"
    assert shed.headers["x-request-id"].startswith("req_")
    assert len(proxy.upstream.requests) == 2
    wait_for(lambda: UsageRecord.objects.count() == 2)
    samples = scrape(proxy.gateway.base_url)
    assert value(samples, "llm_gateway_shed_total", reason="in_flight") == 1
    assert value(samples, "llm_gateway_shed_total", reason="lag") == 0
    assert (
        value(
            samples,
            "llm_gateway_requests_total",
            provider="none",
            model="",
            status="503",
            endpoint="chat.completions",
        )
        == 1
    )
    # the place is free again
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200


def test_a_stream_holds_its_place_until_it_ends(start_proxy):
    proxy: Proxy = start_proxy(GATEWAY_MAX_IN_FLIGHT="1")
    proxy.upstream.enqueue(Reply(chunks=tuple(" w" for _ in range(10)), chunk_delay=0.1))

    with proxy.http.stream("POST", "/v1/chat/completions", json=proxy.chat_body(stream=True)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith("data: ")
        during = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
        assert (during.status_code, during.json()) == (503, SHED)
        load = proxy.http.get("/health").json()["load"]
        assert (load["in_flight"], load["max_in_flight"], load["max_loop_lag_ms"]) == (1, 1, 1000.0)
        assert 0 <= load["loop_lag_ms"] < 1000
        assert list(lines)[-2:] == ["data: [DONE]", ""]

    after = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert after.status_code == 200
    assert proxy.http.get("/health").json()["load"]["in_flight"] == 0
    assert len(proxy.upstream.requests) == 2
    # the models list costs nothing upstream and is never shed
    assert proxy.http.get("/v1/models").status_code == 200
    assert proxy.http.post("/v1/chat/completions", json={"model": MODEL}).status_code == 400
