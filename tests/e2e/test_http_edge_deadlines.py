"""Deadlines at the HTTP edge, against a Daphne gateway with short ones set by environment: a
client that trickles its headers, sends nothing, or trickles its body is answered 408 in
OpenAI's envelope when its deadline passes and its connection is closed; a kept-alive
connection idle between requests is not cut by the header deadline."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import Proxy
from tests.e2e.edge_client import (
    RawConnection,
    assert_refused,
    assert_untouched,
    key_header,
    post_head,
)
from tests.fakes.openai_upstream import FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEADLINES = {"GATEWAY_HEADER_TIMEOUT_SECONDS": "1", "GATEWAY_BODY_TIMEOUT_SECONDS": "1.5"}
TRICKLE_SECONDS = 0.2
GIVE_UP_SECONDS = 8  # a trickle this long means the gateway never cut it off


def trickle(connection: RawConnection, data: bytes) -> float:
    """Send ``data`` a byte at a time until the server closes the connection or the bytes run
    out (at most GIVE_UP_SECONDS); the seconds it took."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > GIVE_UP_SECONDS:
            break
        try:
            connection.send(bytes([byte]))
        except OSError:
            break
        time.sleep(TRICKLE_SECONDS)
    return time.monotonic() - started


@pytest.mark.parametrize(("part", "allowed"), [("headers", "1"), ("body", "1.5")])
def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(start_proxy, part, allowed):
    proxy: Proxy = start_proxy(**DEADLINES)
    body = json.dumps(proxy.chat_body("trickled")).encode()
    head = post_head("/v1/chat/completions", headers={**key_header(proxy), "Content-Length": str(len(body))})
    sent, trickled = (b"", head) if part == "headers" else (head, body)
    with RawConnection(proxy.gateway.base_url, timeout=GIVE_UP_SECONDS) as connection:
        connection.send(sent)
        seconds = trickle(connection, trickled)
        response = connection.read_response()
        assert connection.closed_by_server()
    assert seconds < 5  # well before the client gives up: cut off near its deadline
    assert_refused(response, 408, f"The request {part} did not arrive within {allowed} s.", "request_timeout")
    assert response.headers["connection"] == "close"
    assert_untouched(proxy)


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(start_proxy):
    proxy: Proxy = start_proxy(**DEADLINES)
    with RawConnection(proxy.gateway.base_url, timeout=GIVE_UP_SECONDS) as connection:
        started = time.monotonic()
        response = connection.read_response()
        assert connection.closed_by_server()
    assert time.monotonic() - started < 4
    assert_refused(response, 408, "The request headers did not arrive within 1 s.", "request_timeout")


def test_a_kept_alive_connection_idle_between_requests_is_not_cut(start_proxy):
    proxy: Proxy = start_proxy(**DEADLINES)
    body = json.dumps(proxy.chat_body()).encode()
    request = post_head(
        "/v1/chat/completions", headers={**key_header(proxy), "Content-Length": str(len(body))}
    )
    proxy.upstream.enqueue(Reply(content="first", usage=FakeUsage(5, 1)))
    proxy.upstream.enqueue(Reply(content="second", usage=FakeUsage(5, 1)))
    with RawConnection(proxy.gateway.base_url, timeout=GIVE_UP_SECONDS) as connection:
        connection.send(request + body)
        first = connection.read_response()
        time.sleep(2.5)  # longer than both deadlines
        connection.send(request + body)
        second = connection.read_response()
    contents = [json.loads(r.body)["choices"][0]["message"]["content"] for r in (first, second)]
    assert ([first.status, second.status], contents) == ([200, 200], ["first", "second"])
