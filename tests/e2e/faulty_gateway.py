"""The gateway's ASGI application with fault injection, for the settlement invariant tests:
``daphne tests.e2e.faulty_gateway:application``. A request carrying ``x-test-fault: STAGE``
makes that stage of its own handling raise ``InjectedFault`` (the first time it is reached);
every other request, and every other stage, runs the real code unchanged.

The stages are the request path's functions, wrapped where the code looks them up."""

from __future__ import annotations

import contextvars
import functools
import importlib
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
django.setup(set_prefix=False)

FAULT_HEADER = b"x-test-fault"


class InjectedFault(RuntimeError):
    pass


# (module, attribute path) of each stage; ``after`` stages fail on their Nth call in a request.
STAGES: dict[str, tuple[str, str, int]] = {
    # before admission: nothing may be reserved or recorded
    "estimate": ("gateway_site.api.estimate", "estimate_chat", 1),
    "admit": ("quotas.stores.shared", "RedisStore.evaluate", 1),
    # after admission: settled once and recorded once
    "cache_lookup": ("gateway_site.api.pipeline", "consult_cache", 1),
    "adapter_request": ("providers.vendors.openai.adapter", "to_upstream", 1),
    "upstream_send": ("providers.translation.upstream", "send", 1),
    "adapter_response": ("providers.vendors.openai.adapter", "from_upstream", 1),
    "stream_open": ("providers.sse", "SSEDecoder.feed", 1),
    "cache_store": ("gateway_site.api.cache", "ChatCache.store", 1),
    "render": ("gateway_site.api.route", "json_response", 1),
    "stream_response": ("gateway_site.api.stream", "_sse_response", 1),
    "stream_relay": ("gateway_site.api.dialects.openai_chat", "ChatChunks.event", 2),
    "price": ("gateway_site.api.settle", "usage_event", 1),
    "settle": ("quotas.limiter", "Limiter.settle_soon", 1),
    "outbox_encode": ("gateway_site.runtime.usage_sink", "encode_event", 1),
    "metrics": ("gateway_site.observability.metrics", "observe_finish", 1),
    "access_log": ("gateway_site.api.settle", "log_admitted", 1),
}

_fault: contextvars.ContextVar[str] = contextvars.ContextVar("fault", default="")
_calls: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("calls", default=None)


def _due(stage: str, nth: int) -> bool:
    calls = _calls.get()
    if _fault.get() != stage or calls is None:
        return False
    calls[stage] = calls.get(stage, 0) + 1
    return calls[stage] == nth


def _wrap(stage: str, nth: int, original: Callable[..., Any]) -> Callable[..., Any]:
    if hasattr(original, "__func__") or not callable(original):
        raise TypeError(f"cannot wrap {stage}")
    is_async = getattr(original, "__code__", None) is not None and original.__code__.co_flags & 0x80

    if is_async:

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if _due(stage, nth):
                raise InjectedFault(f"injected fault at {stage}")
            return await original(*args, **kwargs)

        return async_wrapper

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _due(stage, nth):
            raise InjectedFault(f"injected fault at {stage}")
        return original(*args, **kwargs)

    return wrapper


def _install() -> None:
    for stage, (module_name, path, nth) in STAGES.items():
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, _wrap(stage, nth, getattr(owner, name)))


_install()

from gateway_site.asgi import application as _gateway  # noqa: E402

Scope = dict[str, Any]


async def application(
    scope: Scope,
    receive: Callable[[], Awaitable[Mapping[str, Any]]],
    send: Callable[[Mapping[str, Any]], Awaitable[None]],
) -> None:
    headers = dict(scope.get("headers", ())) if scope["type"] == "http" else {}
    _fault.set(headers.get(FAULT_HEADER, b"").decode())
    _calls.set({})
    await _gateway(scope, receive, send)
