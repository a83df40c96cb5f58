"""The gateway's ASGI application with a timestamp (wall clock, shared by every process on the
machine) written at each stage of a streamed chat request, for ``bench.ttft_stages``: the
request reaches the application, the route is resolved, admission starts, its Redis pipeline
is sent and answered, admission ends, the upstream request is sent and its headers come back,
the first body chunk is handed to the server. Run as ``daphne bench.ttft_probe:application``
with ``TTFT_STAGES_LOG`` naming the file; never used outside the bench."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from gateway_site import asgi
from gateway_site.api import pipeline
from providers import http
from quotas.stores import autopipeline

_LOG = open(os.environ["TTFT_STAGES_LOG"], "a", buffering=1)  # noqa: SIM115 (the process's lifetime)


def mark(stage: str) -> None:
    _LOG.write(f"{stage} {time.time():.6f}\n")


def _around(owner: Any, name: str, before: str, after: str | None = None) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        mark(before)
        result = await original(*args, **kwargs)
        if after is not None:
            mark(after)
        return result

    setattr(owner, name, timed)


_handle = asgi.LeanASGIHandler._handle


async def _handle_timed(self: Any, scope: Any, receive: Any, send: Any) -> None:
    if scope["path"] != "/v1/chat/completions":
        await _handle(self, scope, receive, send)
        return
    mark("app")
    first = True

    async def send_timed(message: Any) -> None:
        nonlocal first
        if first and message["type"] == "http.response.body" and message.get("body"):
            first = False
            mark("first_body_sent")
        await send(message)

    await _handle(self, scope, receive, send_timed)


asgi.LeanASGIHandler._handle = _handle_timed  # type: ignore[method-assign]
_around(pipeline, "resolve_route", "route")
_around(pipeline, "admit_request", "admit", "admitted")
_around(autopipeline.AutoPipeline, "_execute", "redis_sent", "redis_answered")
_around(http.UpstreamHTTP, "send", "upstream_sent", "upstream_headers")

application = asgi.application
