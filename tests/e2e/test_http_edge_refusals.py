"""Refusals at the HTTP edge, against a Daphne gateway: whatever the HTTP layer or the API
refuses under ``/v1`` is answered in OpenAI's error envelope with its status and an
``x-request-id`` (no empty answer, dropped connection or HTML page), and reaches neither the
upstream nor the usage ledger. The admin's refusal of a spoofed ``Host`` logs one line."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Proxy
from tests.e2e.edge_client import (
    assert_refused,
    assert_untouched,
    envelope,
    exchange,
    key_header,
    post_head,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADERS_TOO_LARGE = (
    "The request headers exceed 16384 bytes or 500 fields.",
    "request_header_fields_too_large",
)
NOT_HTTP = ("The request is not valid HTTP/1.1.", "bad_request")
GET_HEAD = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"

# Refused by the HTTP layer, before the application: what is sent, the status, message, code.
PROTOCOL_REFUSALS = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400, NOT_HTTP),
    "header without colon": (GET_HEAD + b"no colon here\r\n\r\n", 400, NOT_HTTP),
    "non-ASCII path": (b"GET /v1/mod\xffels HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, NOT_HTTP),
    "bad Content-Length": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12abc\r\n\r\n",
        400,
        ("The Content-Length header must be a non-negative integer.", "invalid_content_length"),
    ),
    "two lengths": (
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        NOT_HTTP,
    ),
    "unknown transfer coding": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        ("The only Transfer-Encoding accepted is chunked.", "unsupported_transfer_encoding"),
    ),
    "header line too long": (GET_HEAD + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431, HEADERS_TOO_LARGE),
    "too many header fields": (
        GET_HEAD + b"".join(b"X-F%d: 1\r\n" % i for i in range(501)) + b"\r\n",
        431,
        HEADERS_TOO_LARGE,
    ),
    "header section too large": (
        GET_HEAD + b"".join(b"X-F%d: %s\r\n" % (i, b"a" * 1000) for i in range(17)) + b"\r\n",
        431,
        HEADERS_TOO_LARGE,
    ),
}


def test_what_the_http_layer_refuses_is_answered_in_the_envelope(start_proxy):
    proxy: Proxy = start_proxy()
    for case, (data, status, (message, code)) in PROTOCOL_REFUSALS.items():
        response, closed = exchange(proxy.gateway.base_url, data)
        assert_refused(response, status, message, code, case=case)
        assert (response.headers["connection"], closed) == ("close", True), case
    assert_untouched(proxy)


def test_a_malformed_chunked_body_is_refused_in_the_envelope(start_proxy):
    proxy: Proxy = start_proxy()
    head = post_head("/v1/chat/completions", headers={**key_header(proxy), "Transfer-Encoding": "chunked"})
    response, closed = exchange(proxy.gateway.base_url, head + b"zz\r\nnot hex\r\n")
    assert_refused(response, 400, *NOT_HTTP)
    assert closed
    assert_untouched(proxy)


def test_the_api_refuses_what_it_cannot_read_before_reading_it(start_proxy):
    proxy: Proxy = start_proxy()
    key = key_header(proxy)
    multipart = post_head(
        "/v1/chat/completions",
        headers={**key, "Content-Type": "multipart/form-data; boundary=zz", "Content-Length": "5"},
    )
    response, _ = exchange(proxy.gateway.base_url, multipart + b"hello")
    assert_refused(
        response,
        415,
        "The request body must be JSON (Content-Type: application/json), not multipart.",
        "unsupported_media_type",
    )
    response, _ = exchange(proxy.gateway.base_url, post_head("/v1/embeddings", headers=key))
    assert_refused(
        response,
        411,
        "Send the request body with a Content-Length or chunked transfer encoding.",
        "length_required",
    )
    assert_untouched(proxy)


PATH_VARIANTS = {
    "/V1/chat/completions": "POST",
    "/v1//chat/completions": "POST",
    "/v1/chat/completions/": "POST",
    "/V1/models": "GET",
    "/v1": "GET",
    "/v1/Models": "GET",
}


def test_path_variants_under_v1_get_the_apis_404(start_proxy):
    proxy: Proxy = start_proxy()
    for path, method in PATH_VARIANTS.items():
        response = proxy.http.request(method, path, json=proxy.chat_body() if method == "POST" else None)
        assert response.status_code == 404, path
        assert response.json() == envelope(f"Unknown endpoint: {method} {path}.", code="not_found"), path
        assert response.headers["x-request-id"].startswith("req_"), path
    wrong_method = proxy.http.get("/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == envelope(
        "Method GET is not allowed here; use POST.", code="method_not_allowed"
    )
    assert_untouched(proxy)


def test_a_spoofed_host_on_the_admin_logs_one_line_without_a_traceback(gateway_factory):
    gateway = gateway_factory()
    spoofed = b"GET /admin/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    for _ in range(2):
        response, _ = exchange(gateway.base_url, spoofed)
        assert response.status == 400
    log = gateway.log()
    lines = [line for line in log.splitlines() if "Invalid HTTP_HOST header: 'evil.example'" in line]
    assert len(lines) == 2
    assert all(" ERROR django.security.DisallowedHost " in line for line in lines)
    assert "Traceback" not in log


def test_a_websocket_handshake_is_refused_without_a_stack_trace(gateway_factory):
    """No WebSocket is served; Daphne answers the refused handshake itself (403, no body)."""
    gateway = gateway_factory()
    upgrade = (
        b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response, closed = exchange(gateway.base_url, upgrade)
    assert (response.status, response.body, closed) == (403, b"", True)
    assert "Traceback" not in gateway.log()
