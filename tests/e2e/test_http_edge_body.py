"""Request bodies at the HTTP edge, against a Daphne gateway: a body is read only after the key
was authenticated and only up to GATEWAY_MAX_BODY_BYTES. A declared length over the limit is
refused before any byte of the body; a chunked body as soon as it passes the limit; a request
without a valid key without its body being read. Each refusal is OpenAI's error envelope, closes
the connection, and leaves no trace (no upstream call, no usage record). Bodies that are
allowed reach the upstream whole, however they arrive.

How much of a body the gateway read is bounded by how much the client could send: the client's
send buffer is capped (SNDBUF), so what it sent is at most what the gateway read plus two
kernel buffers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.conftest import MODEL, UPSTREAM_MODEL, Proxy, assert_gateway_headers, records
from tests.e2e.edge_client import (
    RawConnection,
    assert_refused,
    assert_untouched,
    envelope,
    key_header,
    post_head,
    upload,
)
from tests.fakes.openai_upstream import FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIMIT = 65536
SNDBUF = 65536
UPLOAD = 32 * 1024 * 1024  # what the client offers; the gateway must read almost none of it
READ_BOUND = 2 * 1024 * 1024  # the limit plus both kernel buffers, with room to spare


NO_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, NO_KEY), ({"Authorization": "Bearer sk-gw-" + "x" * 43}, "Incorrect API key provided.")],
    ids=["missing key", "unknown key"],
)
def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(start_proxy, headers, message):
    proxy: Proxy = start_proxy()
    head = post_head("/v1/chat/completions", headers={**headers, "Transfer-Encoding": "chunked"})
    with RawConnection(proxy.gateway.base_url, sndbuf=SNDBUF) as connection:
        sent = upload(connection, head, total=UPLOAD, chunked=True)
        assert connection.closed_by_server()
    assert_refused(sent.response, 401, message, "invalid_api_key")
    assert sent.response.headers["connection"] == "close"
    assert sent.sent < READ_BOUND
    assert_untouched(proxy)


def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body(start_proxy):
    proxy: Proxy = start_proxy(GATEWAY_MAX_BODY_BYTES=str(LIMIT))
    head = post_head(
        "/v1/chat/completions", headers={**key_header(proxy), "Content-Length": str(400 * 2**20)}
    )
    with RawConnection(proxy.gateway.base_url, timeout=5) as connection:
        connection.send(head)  # and not one byte of the body
        response = connection.read_response()
        assert connection.closed_by_server()
    message = f"The request body is {400 * 2**20} bytes; the limit is {LIMIT} bytes."
    assert_refused(response, 413, message, "request_too_large")
    assert response.headers["connection"] == "close"
    assert_untouched(proxy)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(start_proxy):
    proxy: Proxy = start_proxy(GATEWAY_MAX_BODY_BYTES=str(LIMIT))
    head = post_head("/v1/chat/completions", headers={**key_header(proxy), "Transfer-Encoding": "chunked"})
    with RawConnection(proxy.gateway.base_url, sndbuf=SNDBUF) as connection:
        sent = upload(connection, head, total=UPLOAD, chunked=True)
        assert connection.closed_by_server()
    assert_refused(
        sent.response, 413, f"The request body exceeds the limit of {LIMIT} bytes.", "request_too_large"
    )
    assert sent.response.headers["connection"] == "close"
    assert LIMIT < sent.sent < READ_BOUND
    assert_untouched(proxy)


def test_expect_100_continue_is_answered_only_once_the_body_is_wanted(start_proxy):
    proxy: Proxy = start_proxy()
    body = json.dumps(proxy.chat_body()).encode()
    declared = {"Content-Length": str(len(body)), "Expect": "100-continue"}
    with RawConnection(proxy.gateway.base_url, timeout=5) as connection:
        connection.send(post_head("/v1/chat/completions", headers=declared))
        refused = connection.read_response()  # the body was never sent
        assert connection.closed_by_server()
    assert (refused.interim, refused.status) == ([], 401)

    proxy.upstream.enqueue(Reply(content="go on", usage=FakeUsage(5, 2)))
    with RawConnection(proxy.gateway.base_url, timeout=5) as connection:
        connection.send(post_head("/v1/chat/completions", headers={**key_header(proxy), **declared}))
        assert connection.read_interim() == 100
        connection.send(body)
        answered = connection.read_response()
    assert answered.status == 200
    assert json.loads(answered.body)["choices"][0]["message"]["content"] == "go on"
    assert len(proxy.upstream.requests) == 1


def test_large_and_chunked_bodies_reach_the_upstream_whole(start_proxy):
    """A body of many socket reads, declared or chunked, on one kept-alive connection."""
    proxy: Proxy = start_proxy()
    content = "".join(f"line {i:07d} " for i in range(150_000))  # 2.1 MB, under the 4 MiB default
    proxy.upstream.enqueue(Reply(content="one", usage=FakeUsage(5, 1)))
    proxy.upstream.enqueue(Reply(content="two", usage=FakeUsage(5, 1)))
    declared = proxy.http.post("/v1/chat/completions", json=proxy.chat_body(content))
    encoded = json.dumps(proxy.chat_body(content + "!")).encode()
    pieces = (encoded[i : i + 50_000] for i in range(0, len(encoded), 50_000))
    chunked = proxy.http.post(
        "/v1/chat/completions", content=pieces, headers={"Content-Type": "application/json"}
    )

    assert (declared.status_code, chunked.status_code) == (200, 200)
    assert_gateway_headers(declared)
    first, second = proxy.upstream.requests
    assert first.body["messages"] == [{"role": "user", "content": content}]
    assert second.body["messages"] == [{"role": "user", "content": content + "!"}]
    assert (first.body["model"], second.body["model"]) == (UPSTREAM_MODEL, UPSTREAM_MODEL)
    assert [(r.model, r.status) for r in records(2)] == [(MODEL, 200), (MODEL, 200)]


def test_pipelined_requests_with_bodies_are_answered_in_order(start_proxy):
    proxy: Proxy = start_proxy()
    proxy.upstream.enqueue(Reply(content="first", usage=FakeUsage(5, 1)))
    proxy.upstream.enqueue(Reply(content="second", usage=FakeUsage(5, 1)))
    requests = b""
    for text in ("a", "b"):
        body = json.dumps(proxy.chat_body(text)).encode()
        headers = {**key_header(proxy), "Content-Length": str(len(body))}
        requests += post_head("/v1/chat/completions", headers=headers) + body
    with RawConnection(proxy.gateway.base_url, timeout=10) as connection:
        connection.send(requests)
        answers = [connection.read_response(), connection.read_response()]
    contents = [json.loads(a.body)["choices"][0]["message"]["content"] for a in answers]
    assert ([a.status for a in answers], contents) == ([200, 200], ["first", "second"])
    assert [r.body["messages"][0]["content"] for r in proxy.upstream.requests] == ["a", "b"]


def test_httpx_reads_the_refusal_of_a_body_it_was_still_sending(start_proxy):
    """httpx sends a whole body before reading; the gateway stops reading at the limit and
    closes, and the client still gets the 413 rather than a broken connection."""
    proxy: Proxy = start_proxy(GATEWAY_MAX_BODY_BYTES=str(LIMIT))
    with httpx.Client(base_url=proxy.gateway.base_url, timeout=30) as client:
        response = client.post(
            "/v1/chat/completions",
            content=b"a" * (16 * 2**20),
            headers={**key_header(proxy), "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json() == envelope(
        f"The request body is {16 * 2**20} bytes; the limit is {LIMIT} bytes.", code="request_too_large"
    )
    assert_gateway_headers(response)
