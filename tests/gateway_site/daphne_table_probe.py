"""Run by ``test_daphne_request_table`` in a process of its own (Daphne installs Twisted's
asyncio reactor on import): a real Daphne ``Server`` with the gateway's HTTP factory, fed
requests through an in-memory transport, printing how many requests Daphne's table holds after
each step as JSON. Daphne's once-a-second sweep runs only where the steps call it."""

from __future__ import annotations

import asyncio
import json

import daphne.server  # noqa: F401  (first: it installs the asyncio reactor)
import django

django.setup()

from daphne.server import Server  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from gateway_site.http_edge.factory import GatewayHTTPFactory  # noqa: E402

RELEASE = asyncio.Event()


async def application(scope, receive, send) -> None:
    if scope["path"] == "/raise":
        raise RuntimeError("the application failed")
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
    if scope["path"] == "/linger":  # returns only after its response is complete
        await RELEASE.wait()


async def turns() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def main() -> dict[str, object]:
    server = Server(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}  # what Server.run sets up
    protocol = GatewayHTTPFactory(server).buildProtocol(("127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    held: dict[str, object] = {}

    protocol.dataReceived(b"GET /a HTTP/1.1\r\nHost: gw\r\n\r\n")
    await turns()
    held["get"] = len(server.connections)
    protocol.dataReceived(b"POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc")
    await turns()
    held["post"] = len(server.connections)
    protocol.dataReceived(b"GET /linger HTTP/1.1\r\nHost: gw\r\n\r\n")
    await turns()
    held["lingering"] = len(server.connections)
    RELEASE.set()
    await turns()
    held["returned"] = len(server.connections)
    protocol.dataReceived(b"GET /raise HTTP/1.1\r\nHost: gw\r\n\r\n")
    await turns()
    held["raised"] = len(server.connections)
    held["answered_before_sweep"] = b" 500 " in transport.value()
    server.application_checker()
    await turns()
    held["answered_by_sweep"] = b" 500 " in transport.value()
    held["ok_responses"] = transport.value().count(b"HTTP/1.1 200 OK")
    return held


if __name__ == "__main__":
    print(json.dumps(asyncio.get_event_loop().run_until_complete(main())))
