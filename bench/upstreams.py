"""Starting the three loopback upstreams, pinned to the load CPU: nginx (one worker, ``return
200``) for the fixed response when it is installed, else the Python fallback in
``bench.servers``; the 50 ms and streaming upstreams are always ``bench.servers``."""

from __future__ import annotations

import shutil
import socket
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from bench.payloads import chat_request, completion
from bench.proc import Service, pinned, start_service, wait_until
from bench.servers import CHAT_PATH

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Upstream:
    name: str
    implementation: str
    base_url: str  # ends in /v1: what a provider's base_url is
    service: Service

    @property
    def chat_url(self) -> str:
        return self.base_url.removesuffix("/v1") + CHAT_PATH


@dataclass
class Upstreams:
    fixed: Upstream
    delay: Upstream
    stream: Upstream

    def all(self) -> list[Upstream]:
        return [self.fixed, self.delay, self.stream]

    def stop(self) -> None:
        for upstream in self.all():
            upstream.service.stop()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def nginx_config(*, port: int, workdir: Path, body: bytes) -> str:
    text = body.decode()
    if any(c in text for c in "'\\$"):
        raise ValueError("the fixed response must not contain ', \\ or $ (nginx string syntax)")
    temp = "\n".join(
        f"    {name}_temp_path {workdir / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "nginx-error.log"} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp}
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{
            default_type application/json;
            return 200 '{text}';
        }}
    }}
}}
"""


def _responds(url: str) -> bool:
    try:
        return httpx.post(url, content=chat_request("probe"), timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _start_python(kind: str, *, cpu: int | None, workdir: Path) -> Upstream:
    sock = listening_socket()
    port = sock.getsockname()[1]
    argv = pinned(cpu, [sys.executable, "-m", "bench.servers", kind, "--fd", str(sock.fileno())])
    service = start_service(f"upstream-{kind}", argv, log_dir=workdir, cwd=ROOT, pass_fds=[sock.fileno()])
    sock.close()
    implementation = "aiohttp.web" if kind != "fixed" else "Python asyncio protocol (no nginx)"
    return Upstream(kind, implementation, f"http://127.0.0.1:{port}/v1", service)


def _start_nginx(binary: str, *, cpu: int | None, workdir: Path) -> Upstream | None:
    """nginx with its own temporary configuration; None (and a message) if it does not serve."""
    nginx_dir = workdir / "nginx"
    nginx_dir.mkdir()
    port = free_port()
    config = nginx_dir / "nginx.conf"
    config.write_text(nginx_config(port=port, workdir=nginx_dir, body=completion()))
    argv = pinned(
        cpu, [binary, "-e", str(nginx_dir / "nginx-error.log"), "-p", str(nginx_dir), "-c", str(config)]
    )
    service = start_service("upstream-fixed-nginx", argv, log_dir=workdir)
    upstream = Upstream("fixed", "nginx, 1 worker, return 200", f"http://127.0.0.1:{port}/v1", service)
    try:
        wait_until(partial(_responds, upstream.chat_url), service=service, timeout=10)
    except RuntimeError as exc:
        service.stop()
        print(f"nginx did not start ({exc}); using the Python fixed-response upstream")
        return None
    return upstream


def start_upstreams(*, cpu: int | None, workdir: Path, use_nginx: bool = True) -> Upstreams:
    binary = nginx_binary() if use_nginx else None
    started: list[Upstream] = []
    try:
        fixed = _start_nginx(binary, cpu=cpu, workdir=workdir) if binary else None
        fixed = fixed or _start_python("fixed", cpu=cpu, workdir=workdir)
        started.append(fixed)
        delay = _start_python("delay", cpu=cpu, workdir=workdir)
        started.append(delay)
        stream = _start_python("stream", cpu=cpu, workdir=workdir)
        started.append(stream)
        for upstream in started:
            wait_until(partial(_responds, upstream.chat_url), service=upstream.service)
    except BaseException:
        for upstream in started:
            upstream.service.stop()
        raise
    return Upstreams(fixed=fixed, delay=delay, stream=stream)
