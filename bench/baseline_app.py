"""The reference the throughput target is set against (docs/benchmarks.md): a bare Django async
view on Daphne that forwards the request body to one upstream with the gateway's own HTTP
client (httpx on the aiohttp transport, ``providers.http``) and returns the answer. No middleware, no
auth, no database, nothing else: ``daphne bench.baseline_app:application`` with
``BENCH_UPSTREAM_URL`` set to the upstream's chat completions URL."""

from __future__ import annotations

import asyncio
import os

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-baseline",  # a throwaway process with no secrets
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
)
django.setup(set_prefix=False)

from django.core.handlers.asgi import ASGIHandler  # noqa: E402 - needs settings first

from providers.http import UpstreamHTTP, create_http_client  # noqa: E402

UPSTREAM_URL = os.environ.get("BENCH_UPSTREAM_URL", "")
_clients: dict[asyncio.AbstractEventLoop, UpstreamHTTP] = {}


def _client() -> UpstreamHTTP:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = create_http_client(max_connections=1000, timeout_seconds=600, connect_timeout=5)
        _clients[loop] = client
    return client


async def chat_completions(request: HttpRequest) -> HttpResponse:
    http = _client()
    upstream = await http.send(
        http.request(UPSTREAM_URL, headers={"content-type": "application/json"}, content=request.body)
    )
    try:
        content = await upstream.aread()
    finally:
        await upstream.aclose()
    return HttpResponse(content, status=upstream.status_code, content_type="application/json")


async def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


urlpatterns = [
    path("v1/chat/completions", chat_completions),
    path("live", live),
]

application = ASGIHandler()
