"""What happened to a request, as one value: the status the client saw and its error class, the
usage as reported (by the upstream or the response cache), the deployment that served, whether
the cache answered, whether the client left, and for a stream what reached the client. Each
path builds one (``served`` and its failures, ``StreamProgress.outcome`` for a stream) and hands
it to ``gateway_site.api.settle.finish``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

from gateway_site.api.errors import RequestError
from gateway_site.observability.tracing import StreamEnd
from providers.errors import UpstreamError
from providers.types import DeploymentConfig, Usage

DISCONNECTED = 499


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int = 200
    error_type: str = ""
    usage: Usage | None = None  # None: not reported (counted from what went through)
    deployment: DeploymentConfig | None = None  # None: the one the route plan called last
    cache_hit: bool = False  # answered from the response cache: no upstream cost, cost saved
    client_disconnected: bool = False
    streamed_text: str = ""  # what reached a stream's client, for a count when usage is missing
    first_token_at: float | None = None  # time.perf_counter() of a stream's first text
    response_body: bytes = b""  # a non-streamed answer, for content logging

    @property
    def failed(self) -> bool:
        return self.status >= 400

    def ended_by(self, error: BaseException) -> Outcome:
        """This outcome as ``error`` ended it (what was reported so far is kept): the status and
        class of an upstream or request error, 499 for a cancellation (the client left), else a
        500 (a bug of ours)."""
        if isinstance(error, asyncio.CancelledError):
            return replace(
                self, status=DISCONNECTED, error_type="client_disconnected", client_disconnected=True
            )
        if isinstance(error, (UpstreamError, RequestError)):
            return replace(self, status=error.status, error_type=error.error_type)
        return replace(self, status=500, error_type="server_error")


def disconnected() -> Outcome:
    """A client that went away before anything was answered."""
    return Outcome(status=DISCONNECTED, error_type="client_disconnected", client_disconnected=True)


@dataclass(slots=True)
class StreamProgress:
    """What a relayed stream has done so far; ``outcome()`` when it ends."""

    usage: Usage | None = None
    texts: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    status: int = 200
    error_type: str = ""
    client_disconnected: bool = False

    def on_text(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.texts.append(text)

    def fail(self, *, status: int, error_type: str) -> None:
        self.status, self.error_type = status, error_type

    def disconnect(self) -> None:
        self.client_disconnected = True
        self.status, self.error_type = DISCONNECTED, "client_disconnected"

    def stream_end(self) -> StreamEnd:
        """How the stream ended, for its span."""
        usage = self.usage
        return StreamEnd(
            status=self.status,
            error_type=self.error_type,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )

    def outcome(self, *, deployment: DeploymentConfig | None = None, cache_hit: bool = False) -> Outcome:
        return Outcome(
            status=self.status,
            error_type=self.error_type,
            usage=self.usage,
            deployment=deployment,
            cache_hit=cache_hit,
            client_disconnected=self.client_disconnected,
            streamed_text="".join(self.texts),
            first_token_at=self.first_token_at,
        )
