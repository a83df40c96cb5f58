"""Driving load with wrk: a generated Lua script sets the POST body and the Authorization
header and, in ``done()``, prints the run's summary as one JSON line that is parsed here
(requests, duration, latency percentiles, and every error class wrk counts)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.proc import pinned

MARKER = "BENCH_RESULT "
INSTALL_HINT = (
    "wrk is not installed: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) and rerun."
)

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local shed = 0
  for _, thread in ipairs(threads) do shed = shed + (thread:get("shed") or 0) end
  io.write(string.format(
    "BENCH_RESULT {\"requests\": %.0f, \"duration_us\": %.0f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
    .. "\"p99_us\": %.1f, \"mean_us\": %.1f, \"max_us\": %.1f, \"connect\": %.0f, \"read\": %.0f, "
    .. "\"write\": %.0f, \"status\": %.0f, \"timeout\": %.0f, \"shed\": %.0f}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write, e.status,
    e.timeout, shed))
end
"""
# Sheds (503 from an overloaded gateway) are counted apart from errors. Only scripts that ask
# for it define response(): wrk then parses every response, which would slow the direct runs.
_COUNT_SHEDS = r"""
threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) shed = 0 end
response = function(status, headers, body) if status == 503 then shed = shed + 1 end end
"""
_NO_SHEDS = "threads = {}\n"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx: int  # wrk counts a status >= 400 as a status error; sheds excluded
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    shed: int = 0  # 503 answers of a gateway shedding load (counted when the script asked)

    @property
    def requests_per_s(self) -> float:
        """Answered requests a second, sheds excluded."""
        return (self.requests - self.shed) / self.duration_s if self.duration_s else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "requests_per_s": self.requests_per_s, "socket_errors": self.socket_errors}


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    if "]==]" in text:
        raise ValueError("text cannot be embedded in a Lua long string")
    return f"[==[{text}]==]"


def lua_script(*, body: bytes, key: str | None, count_sheds: bool = False) -> str:
    """The POST of ``body``; ``count_sheds``: count 503 answers (load shedding) apart."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {_lua_string(body.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if key:
        lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + key)}')
    return "\n".join(lines) + "\n" + (_COUNT_SHEDS if count_sheds else _NO_SHEDS) + _DONE


def parse_output(stdout: str) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    raw = json.loads(line[len(MARKER) :])
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=int(raw["status"]) - int(raw.get("shed", 0)),
        connect_errors=int(raw["connect"]),
        read_errors=int(raw["read"]),
        write_errors=int(raw["write"]),
        timeouts=int(raw["timeout"]),
        shed=int(raw.get("shed", 0)),
    )


def run_wrk(
    url: str,
    *,
    script: Path,
    connections: int,
    seconds: int,
    cpu: int | str | None,
    timeout_seconds: int = 10,
) -> WrkResult:
    argv = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={timeout_seconds}s",
            "-s",
            str(script),
            url,
        ],
    )
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout_seconds + 30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return parse_output(result.stdout)
