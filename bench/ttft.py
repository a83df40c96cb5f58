"""Time to first token: a small asyncio (aiohttp) client that opens streaming chat requests, a
given number at a time for a fixed duration, and notes when the response started, when the
first content chunk arrived and how the content chunks were spread in time (a relay that
buffers delivers them all at once at the end instead of ``STREAM_CHUNK_GAP`` apart)."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.payloads import STREAM_CHUNK_GAP, STREAM_CONTENT_CHUNKS

# Content chunks whose arrival spans at least this share of the upstream's own spread count as
# relayed as they arrive.
INCREMENTAL_SHARE = 0.5
EXPECTED_SPREAD_S = (STREAM_CONTENT_CHUNKS - 1) * STREAM_CHUNK_GAP


class StreamError(Exception):
    pass


@dataclass(frozen=True)
class StreamSample:
    ttft_s: float
    total_s: float
    content_chunks: int
    spread_s: float  # first to last content chunk

    @property
    def incremental(self) -> bool:
        return self.spread_s >= INCREMENTAL_SHARE * EXPECTED_SPREAD_S


@dataclass
class StreamRun:
    concurrency: int
    elapsed_s: float = 0.0
    samples: list[StreamSample] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)

    @property
    def streams_per_s(self) -> float:
        return len(self.samples) / self.elapsed_s if self.elapsed_s else 0.0

    def ttft_ms(self, percentile: float) -> float:
        return _percentile([s.ttft_s * 1000 for s in self.samples], percentile)

    def total_ms(self, percentile: float) -> float:
        return _percentile([s.total_s * 1000 for s in self.samples], percentile)

    @property
    def incremental_share(self) -> float:
        return sum(s.incremental for s in self.samples) / len(self.samples) if self.samples else 0.0

    @property
    def median_spread_ms(self) -> float:
        return statistics.median(s.spread_s * 1000 for s in self.samples) if self.samples else 0.0

    def note_error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(message)


def _percentile(values: list[float], percentile: float) -> float:
    """Nearest-rank percentile (with few samples, p99 is the maximum)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _has_content(data: bytes) -> bool:
    parsed = orjson.loads(data)
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and delta.get("content"):
            return True
    return False


async def one_stream(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> StreamSample:
    started = time.perf_counter()
    first: float | None = None
    last = started
    chunks = 0
    done = False
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise StreamError(f"HTTP {response.status}: {(await response.text())[:200]}")
        async for line in response.content:  # read to the end so the connection is reused
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
            elif not done and _has_content(data):
                last = time.perf_counter()
                first = first if first is not None else last
                chunks += 1
    if not done:
        raise StreamError("the stream ended without data: [DONE]")
    if first is None or chunks != STREAM_CONTENT_CHUNKS:
        raise StreamError(f"{chunks} content chunks instead of {STREAM_CONTENT_CHUNKS}")
    return StreamSample(
        ttft_s=first - started,
        total_s=time.perf_counter() - started,
        content_chunks=chunks,
        spread_s=last - first,
    )


async def _run(url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float) -> StreamRun:
    run = StreamRun(concurrency=concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                try:
                    run.samples.append(await one_stream(session, url, body, headers))
                except (aiohttp.ClientError, StreamError, TimeoutError, ValueError) as exc:
                    run.note_error(f"{type(exc).__name__}: {exc}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.elapsed_s = time.perf_counter() - started
    return run


def run_streams(url: str, *, body: bytes, key: str | None, concurrency: int, seconds: float) -> StreamRun:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return asyncio.run(_run(url, body, headers, concurrency, seconds))
