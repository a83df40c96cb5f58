"""What the HTTP edge tests share: a raw HTTP/1.1 client over a loopback socket, for what httpx
will not send (malformed requests, trickled bytes, bodies far larger than the gateway should
read) and will not show (whether the server closed the connection, how much of a body it let
through); and the checks on a refusal (OpenAI's envelope, and no trace of the request)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from tests.e2e.conftest import Proxy, records
from tests.fakes.openai_upstream import FakeUsage, Reply


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx statuses received before it

    def json(self) -> object:
        return orjson.loads(self.body)


class RawConnection:
    """One connection to ``base_url``; ``sndbuf`` caps the client's kernel send buffer, so the
    bytes a client managed to send bound what the server read (plus its own receive buffer)."""

    def __init__(self, base_url: str, *, sndbuf: int | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if sndbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname, parts.port))
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _take_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            if not self._fill():
                raise ConnectionError(f"closed before {marker!r}; got {self._buffer[:300]!r}")
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise ConnectionError(f"closed after {len(self._buffer)} of {size} bytes")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_response(self) -> RawResponse:
        interim: list[int] = []
        while True:
            status, headers = self._head()
            if status >= 200:
                break
            interim.append(status)
        return RawResponse(status=status, headers=headers, body=self._body(headers), interim=interim)

    def read_interim(self) -> int:
        """The status of an interim (1xx) response, such as ``100 Continue``."""
        status, _ = self._head()
        assert status < 200, status
        return status

    def _head(self) -> tuple[int, dict[str, str]]:
        lines = self._take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ")[1]), headers

    def _body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return self._take(int(headers["content-length"]))
        if headers.get("transfer-encoding") != "chunked":
            return b""
        body = b""
        while size := int(self._take_until(b"\r\n"), 16):
            body += self._take(size)
            self._take(2)
        self._take_until(b"\r\n")
        return body

    def closed_by_server(self) -> bool:
        """True when the server closes the connection (within the socket's timeout) with
        nothing more sent; False when it stays open that long."""
        try:
            return not self._buffer and not self._fill()
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


@dataclass
class Upload:
    response: RawResponse
    sent: int  # body bytes the client managed to send before the server stopped reading
    seconds: float


def upload(
    connection: RawConnection, head: bytes, *, total: int, chunked: bool, block: int = 65536
) -> Upload:
    """Send ``head`` then up to ``total`` body bytes (as chunks of ``block``, or raw for a
    declared length) while reading the response on the side; stop sending once it came or the
    server stopped reading (a send error)."""
    result: dict[str, RawResponse] = {}
    answered = threading.Event()

    def read() -> None:
        result["response"] = connection.read_response()
        answered.set()

    reader = threading.Thread(target=read, daemon=True)
    started = time.monotonic()
    connection.send(head)
    reader.start()
    piece = b"a" * block
    framed = b"%x\r\n%s\r\n" % (block, piece) if chunked else piece
    sent = 0
    try:
        while sent < total and not answered.is_set():
            connection.send(framed)
            sent += block
        if chunked and not answered.is_set():
            connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed while the client was still sending
    reader.join(30)
    return Upload(response=result["response"], sent=sent, seconds=time.monotonic() - started)


def post_head(path: str, *, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def envelope(message: str, *, code: str | None, type_: str = "invalid_request_error") -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def assert_refused(response: RawResponse, status: int, message: str, code: str, *, case: str = "") -> None:
    """OpenAI's envelope with ``status``, and the gateway's ``x-request-id``."""
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    assert response.status == status, case
    assert response.json() == envelope(message, code=code, type_=error_type), case
    assert response.headers["content-type"] == "application/json", case
    assert response.headers["x-request-id"].startswith("req_"), case
    assert len(response.headers["x-request-id"]) == 28, case


def assert_untouched(proxy: Proxy) -> None:
    """Nothing reached the upstream or the usage ledger: one good request afterwards is the
    only one the upstream saw and the only usage record."""
    proxy.upstream.enqueue(Reply(content="fine", usage=FakeUsage(5, 1)))
    good = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert good.status_code == 200
    [record] = records(1)
    assert record.request_id == good.headers["x-request-id"]
    assert len(proxy.upstream.requests) == 1


def key_header(proxy: Proxy) -> dict[str, str]:
    return {"Authorization": f"Bearer {proxy.key.raw}"}


def exchange(base_url: str, data: bytes, *, timeout: float = 3) -> tuple[RawResponse, bool]:
    """The response to ``data`` sent on a new connection, and whether the server then closed it."""
    with RawConnection(base_url, timeout=timeout) as connection:
        connection.send(data)
        response = connection.read_response()
        return response, connection.closed_by_server()
