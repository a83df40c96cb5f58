"""The upstream connection pool (``providers.http``) under a real adapter against the fake OpenAI
upstream on loopback: what reaches the upstream, that nothing is carried from one request to
the next (cookies), and how transport failures are classified."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from providers.errors import UpstreamTimeout, UpstreamUnreachable
from providers.http import UpstreamHTTP, create_http_client, parsed_url
from providers.translation.upstream import UpstreamCall
from providers.types import DeploymentConfig, ProviderConfig
from providers.vendors.openai.adapter import OpenAIAdapter
from providers.vendors.openai.request import to_upstream
from tests.fakes.openai_upstream import Drop, FakeOpenAIUpstream, Reply

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHTTP]:
    pool = create_http_client(max_connections=10, timeout_seconds=30, connect_timeout=5)
    yield pool
    await pool.aclose()


def call(
    http: UpstreamHTTP, base_url: str, *, api_key: str = "sk-a", timeout: float = 5, stream: bool = False
) -> UpstreamCall:
    provider = ProviderConfig(name="up", kind="openai", base_url=base_url, api_key=api_key)
    return UpstreamCall(
        deployment=DeploymentConfig(id=1, provider=provider, upstream_model="gpt-4o-mini-upstream"),
        body={**BODY, "stream": True} if stream else BODY,
        http=http,
        timeout_seconds=timeout,
        request_id="req_1",
    )


async def test_the_upstream_receives_the_adapters_request_and_the_same_default_headers(upstream, http):
    await OpenAIAdapter().complete(call(http, upstream.base_url))

    [received] = upstream.requests
    _, _, content = to_upstream(BODY, call(http, upstream.base_url).deployment, stream=False)
    assert (received.method, received.path, received.raw) == ("POST", "/v1/chat/completions", content)
    assert received.headers == {
        "host": f"127.0.0.1:{upstream.port}",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": "python-httpx/0.28.1",
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": "Bearer sk-a",
        "content-length": str(len(content)),
    }


def test_each_upstream_url_is_parsed_once_and_every_request_keeps_its_own(http):
    parsed_url.cache_clear()
    first = http.request("http://127.0.0.1:9/v1beta/models/m:generate?key=a", headers={}, content=b"{}")
    again = http.request("http://127.0.0.1:9/v1beta/models/m:generate?key=a", headers={}, content=b"{}")
    other = http.request("http://127.0.0.1:9/v1/chat/completions", headers={}, content=b"{}")

    assert str(first.url) == str(again.url) == "http://127.0.0.1:9/v1beta/models/m:generate?key=a"
    assert (first.url.path, first.url.query) == ("/v1beta/models/m:generate", b"key=a")
    assert str(other.url) == "http://127.0.0.1:9/v1/chat/completions"
    info = parsed_url.cache_info()
    assert (info.hits, info.misses) == (1, 2)


# 127.0.0.1: httpx's client jar kept cookies from IP hosts; localhost: aiohttp's session jar did.
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_an_upstreams_set_cookie_is_not_sent_back_on_the_next_request(upstream, http, host):
    upstream.enqueue(Reply(headers={"Set-Cookie": "session=tenant-a; Path=/"}))
    base_url = f"http://{host}:{upstream.port}/v1"

    first = await OpenAIAdapter().complete(call(http, base_url, api_key="sk-tenant-a"))
    await OpenAIAdapter().complete(call(http, base_url, api_key="sk-tenant-b"))
    stream = await OpenAIAdapter().open_stream(call(http, base_url, api_key="sk-tenant-b", stream=True))
    events = [event async for event in stream.events()]

    assert orjson.loads(first.body)["choices"][0]["message"]["content"] == "Hello!"
    assert events[-1].usage_only
    assert [r.headers["authorization"] for r in upstream.requests] == [
        "Bearer sk-tenant-a",
        "Bearer sk-tenant-b",
        "Bearer sk-tenant-b",
    ]
    assert [r.headers.get("cookie") for r in upstream.requests] == [None, None, None]


async def test_a_slow_upstream_is_a_timeout(upstream, http):
    upstream.enqueue(Reply(delay=2.0))
    with pytest.raises(UpstreamTimeout) as caught:
        await OpenAIAdapter().complete(call(http, upstream.base_url, timeout=0.3))
    assert caught.value.status == 504
    assert caught.value.message == "The upstream provider 'up' did not answer in time."


async def test_a_refused_connection_is_unreachable(http):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(UpstreamUnreachable) as caught:
            await OpenAIAdapter().complete(call(http, f"http://127.0.0.1:{port}/v1"))
    assert caught.value.status == 502
    assert caught.value.message == "The upstream provider 'up' could not be reached."


async def test_a_reset_connection_is_unreachable(upstream, http):
    upstream.enqueue(Drop())
    with pytest.raises(UpstreamUnreachable) as caught:
        await OpenAIAdapter().complete(call(http, upstream.base_url))
    assert caught.value.status == 502
    assert len(upstream.requests) == 1
