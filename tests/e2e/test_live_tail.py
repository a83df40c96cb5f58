"""The live tail's WebSocket on a gateway subprocess (Daphne): a staff session hears the requests
that finish, with their exact model, status and tokens; anonymous and non-staff sessions, a
foreign origin and any other path are refused at the handshake. With Redis (channels-redis, the
watchers in a Redis set) and without (in-memory layer)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import mock_echo_yaml, platform_staff
from tests.e2e.test_admin_browser import chat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def session_of(*, staff: bool) -> str:
    user = (
        platform_staff("staff", password="irrelevant-password-1")
        if staff
        else get_user_model().objects.create_user("someone", password="irrelevant-password-1")
    )
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def ws_url(base: str, path: str = "/admin/live/ws") -> str:
    return base.replace("http://", "ws://") + path


@pytest.fixture(params=["redis", "in-memory"])
def gateway(request, gateway_factory, configure):
    configure(mock_echo_yaml())
    extra = {"GATEWAY_MOCK_CHUNK_DELAY_MS": "0"}
    if request.param == "in-memory":
        extra["REDIS_URL"] = ""
    return gateway_factory(**extra)


def test_a_staff_session_sees_the_requests_as_they_finish(gateway, make_key):
    key = make_key("acme", name="tail")
    cookie = session_of(staff=True)

    with connect(
        ws_url(gateway.base_url),
        additional_headers={"Cookie": f"sessionid={cookie}"},
        origin=gateway.base_url,
    ) as socket:
        response = chat(gateway.base_url, key.raw)
        assert response.status_code == 200
        message = json.loads(socket.recv(timeout=10))

    usage = response.json()["usage"]
    [row] = message["rows"]
    assert row["request_id"] == response.headers["x-request-id"]
    assert {k: v for k, v in row.items() if k not in ("at", "request_id", "latency_ms")} == {
        "tenant": "acme",
        "key": f"{key.raw[:12]}…",
        "endpoint": "chat.completions",
        "model": "mock-echo",
        "deployment": "mock/mock-echo",
        "status": 200,
        "tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "cost": "$0.00",
    }
    assert key.raw not in json.dumps(message)
    assert "Traceback" not in gateway.log()


@pytest.mark.parametrize(
    ("who", "path", "origin"),
    [
        ("anonymous", "/admin/live/ws", None),
        ("non-staff", "/admin/live/ws", None),
        ("staff", "/admin/live/ws", "http://evil.example"),
        ("staff", "/admin/other/ws", None),
    ],
)
def test_other_sockets_are_refused_at_the_handshake(gateway, who, path, origin):
    headers = {}
    if who != "anonymous":
        headers["Cookie"] = f"sessionid={session_of(staff=who == 'staff')}"

    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gateway.base_url, path), additional_headers=headers, origin=origin or gateway.base_url)

    assert refused.value.response.status_code == 403
    assert "Traceback" not in gateway.log()
