"""Transport security: ``manage.py serve --tls-cert --tls-key`` serves HTTPS (TLS 1.2 at least,
1.3 preferred) and the official OpenAI SDK talks to it; upstream mTLS per provider against a
fake OpenAI upstream that requires a client certificate (certificates made by the test); and
``manage.py check --deploy`` clean with the documented production settings."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import sys
import warnings

import httpx
import openai
import pytest

from accounting.models import UsageRecord
from tests.conftest import ROOT, database_url_for_subprocess, wait_for
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.pki import ThrowawayCA

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "gpt-4o-mini"


@pytest.fixture
def ca(tmp_path) -> ThrowawayCA:
    return ThrowawayCA(tmp_path / "pki")


@pytest.fixture
def mtls_upstream(ca):
    """A fake OpenAI upstream on HTTPS that refuses any client without a certificate of ``ca``."""
    server = ca.issue("upstream", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    context.load_cert_chain(server.cert, server.key)
    context.verify_mode = ssl.CERT_REQUIRED
    fake = FakeOpenAIUpstream().start(ssl_context=context)
    yield fake
    fake.stop()


def providers_yaml(upstream: FakeOpenAIUpstream, ca: ThrowawayCA, client) -> str:
    return f"""
providers:
  - name: mtls
    kind: openai
    base_url: {upstream.base_url}
    tls_ca_bundle: {ca.cert}
    tls_client_cert: {client.cert}
    tls_client_key: {client.key}
  - name: no-client-cert
    kind: openai
    base_url: {upstream.base_url}
    tls_ca_bundle: {ca.cert}
models:
  - name: {MODEL}
    deployments:
      - provider: mtls
        model: {MODEL}-upstream
        free: true
  - name: without-cert
    deployments:
      - provider: no-client-cert
        model: {MODEL}-upstream
        free: true
"""


def test_https_gateway_and_mtls_upstream_with_the_official_sdk(
    ca, mtls_upstream, configure, make_key, tmp_path, redis_prefix, settings
):
    gateway_cert = ca.issue("gateway", server=True)
    configure(providers_yaml(mtls_upstream, ca, ca.issue("gateway-client", server=False)))
    key = make_key("acme")
    log_path = tmp_path / "serve.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url_for_subprocess(),
        "SECRET_KEY": settings.SECRET_KEY,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_USAGE_FLUSH_SECONDS": "0.05",
        "GATEWAY_RETRIES": "0",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "manage.py", "serve", "--port", "0"]
    command += ["--tls-cert", str(gateway_cert.cert), "--tls-key", str(gateway_cert.key)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        found = wait_for(
            lambda: re.search(r"gateway listening on https://127\.0\.0\.1:(\d+)", log_path.read_text()),
            timeout=30,
        )
        port = int(found.group(1))
        trusting = ssl.create_default_context(cafile=str(ca.cert))
        wait_for(lambda: _live(port, trusting), timeout=30)

        with httpx.Client(verify=trusting, timeout=30) as http:
            client = openai.OpenAI(
                base_url=f"https://127.0.0.1:{port}/v1", api_key=key.raw, http_client=http, max_retries=0
            )
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
            assert reply.choices[0].message.content == "Hello!"
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(
                    model="without-cert", messages=[{"role": "user", "content": "Hi"}]
                )
        assert refused.value.status_code == 502
        assert len(mtls_upstream.requests) == 1  # the client without a certificate never got through
        assert mtls_upstream.requests[0].body["model"] == f"{MODEL}-upstream"
        wait_for(lambda: UsageRecord.objects.count() == 2)
        assert sorted(UsageRecord.objects.values_list("status", flat=True)) == [200, 502]

        # TLS 1.3 when offered; TLS 1.2 accepted; anything older refused.
        assert _handshake(port, trusting) == "TLSv1.3"
        at_most_12 = ssl.create_default_context(cafile=str(ca.cert))
        at_most_12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert _handshake(port, at_most_12) == "TLSv1.2"
        old = ssl.create_default_context(cafile=str(ca.cert))
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError):
            _handshake(port, old)
        # Plain HTTP on the TLS port gets no answer.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/live", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _live(port: int, context: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"https://127.0.0.1:{port}/live", verify=context, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _handshake(port: int, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def test_serve_refuses_unusable_tls_files(tmp_path, settings, ca):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    key = ca.issue("lonely", server=True).key

    def serve(*tls: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "serve", "--port", "0", *tls],
            cwd=ROOT,
            env={
                "PATH": "/usr/bin:/bin",
                "SECRET_KEY": settings.SECRET_KEY,
                "GATEWAY_DATA_DIR": str(tmp_path),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )

    alone = serve("--tls-cert", str(bad))
    assert alone.returncode == 1
    assert "CommandError: --tls-cert and --tls-key go together" in alone.stderr
    unusable = serve("--tls-cert", str(bad), "--tls-key", str(key))
    assert unusable.returncode == 1
    assert f"CommandError: TLS certificate or key unusable: ValueError: {bad} holds no PEM certificate" in (
        unusable.stderr
    )
    assert "PRIVATE KEY" not in unusable.stderr


PRODUCTION = {
    "GATEWAY_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "GATEWAY_SECURE_COOKIES": "true",
    "GATEWAY_SSL_REDIRECT": "true",
    "GATEWAY_HSTS_SECONDS": "31536000",
    "GATEWAY_HSTS_INCLUDE_SUBDOMAINS": "true",
    "GATEWAY_HSTS_PRELOAD": "true",
    "GATEWAY_ALLOWED_HOSTS": "gateway.example.com",
}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    base = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "k" * 20 + "production-secret-key-of-fifty-chars-or-more",
        "GATEWAY_DATA_DIR": str(tmp_path),
    }

    def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    clean = check(PRODUCTION)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "System check identified no issues (0 silenced)."
    bare = check({})
    assert bare.returncode == 1
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in bare.stderr
