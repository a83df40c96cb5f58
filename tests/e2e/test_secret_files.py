"""Secrets from files under a running Daphne gateway: a provider's ``api_key_file`` rotated
(written anew, as Kubernetes swaps a mounted secret) is used by the next requests without a
restart, and never shows in a log or an error; settings read from ``*_FILE`` variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import httpx
import openai
import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import override_settings

from bench.redis_topology import Node, free_port_pair
from providers.models import Provider
from providers.secrets import encrypt_secret
from quotas.revision import bump_revision
from tests.conftest import ROOT, mock_echo_yaml, signed_in, wait_for
from tests.e2e.conftest import MODEL, records
from tests.e2e.pgbouncer import PgBouncer
from tests.fakes.openai_upstream import ErrorReply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def provider_yaml(base_url: str, key_file: str) -> str:
    return f"""
providers:
  - name: filed
    kind: openai
    base_url: {base_url}
    api_key_file: {key_file}
models:
  - name: {MODEL}
    deployments:
      - provider: filed
        model: {MODEL}-upstream
        free: true
"""


def rotate(path, value: str) -> None:
    """Replace the file atomically (a new inode), as a secret volume update does."""
    staged = path.with_suffix(".new")
    staged.write_text(value + "\n")
    os.replace(staged, path)


def test_a_rotated_key_file_is_used_without_a_restart(
    openai_upstream, gateway_factory, configure, make_key, tmp_path
):
    key_file = tmp_path / "secrets" / "openai-key"
    key_file.parent.mkdir()
    first, second = "sk-upstream-first-" + "a" * 24, "sk-upstream-second-" + "b" * 24
    rotate(key_file, first)
    configure(provider_yaml(openai_upstream.base_url, str(key_file)))
    key = make_key("acme")
    gateway = gateway_factory(GATEWAY_SECRET_FILES_CHECK_SECONDS="0.2")
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
    ask = lambda: client.chat.completions.create(  # noqa: E731
        model=MODEL, messages=[{"role": "user", "content": "Hi"}]
    )

    ask()
    rotate(key_file, second)
    seen = lambda: openai_upstream.requests[-1].headers["authorization"]  # noqa: E731
    wait_for(lambda: ask() is not None and seen() == f"Bearer {second}", timeout=15, interval=0.3)

    used = [r.headers["authorization"] for r in openai_upstream.requests]
    assert used[0] == f"Bearer {first}"
    assert used[-1] == f"Bearer {second}"
    assert set(used) == {f"Bearer {first}", f"Bearer {second}"}
    assert used.index(f"Bearer {second}") == len(used) - used[::-1].index(f"Bearer {first}")  # no return
    assert len(records(len(used))) == len(used)

    # An upstream error echoing the key: the client sees it redacted, and no log holds it.
    openai_upstream.enqueue(ErrorReply(401, "Incorrect API key provided: {key}", code="invalid_api_key"))
    with pytest.raises(openai.APIStatusError) as refused:
        ask()
    assert second not in str(refused.value.body)
    client.close()
    log = gateway.log()
    assert first not in log and second not in log


def test_settings_read_secrets_from_files(tmp_path):
    files = {
        "SECRET_KEY_FILE": ("secret-key-from-a-file-" + "x" * 30) + "\n",
        "GATEWAY_SECRETS_KEYS_FILE": "hHvgaAzhZ6B0ulFBQWCvdp4I1zlV4h3kw0C4_hPg6k8=\n"
        "0Qy4aTaw3nOWO9-mHhe1ls7jD_sWJ9aWXyV5iEg7p0M=\n",
        "DATABASE_PASSWORD_FILE": "db p@ss:w/rd\n",
        "REDIS_PASSWORD_FILE": "redis-secret\n",
    }
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "GATEWAY_SECRETS_KEYS"}}
    for name, content in files.items():
        path = tmp_path / name.lower()
        path.write_text(content)
        env[name] = str(path)
    env["DATABASE_URL"] = "postgres://gateway@127.0.0.1:5432/gateway"
    env["REDIS_URL"] = "redis://127.0.0.1:6379/3"
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "data")

    def settings_of(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script],
            env={**env, "DJANGO_SETTINGS_MODULE": "gateway_site.settings"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; "
        "print(json.dumps([s.SECRET_KEY, s.GATEWAY_SECRETS_KEYS, d['USER'], d['PASSWORD'], d['ENGINE'], "
        "d['PASSWORD_FILE'], s.REDIS_URL]))"
    )
    result = settings_of(env)
    assert result.returncode == 0, result.stderr
    redis_file = quote(env["REDIS_PASSWORD_FILE"], safe="")
    assert json.loads(result.stdout) == [
        "secret-key-from-a-file-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ["hHvgaAzhZ6B0ulFBQWCvdp4I1zlV4h3kw0C4_hPg6k8=", "0Qy4aTaw3nOWO9-mHhe1ls7jD_sWJ9aWXyV5iEg7p0M="],
        "gateway",
        "db p@ss:w/rd",  # the password at start; each new connection reads the file again
        "gateway_site.postgresql",
        env["DATABASE_PASSWORD_FILE"],
        f"redis://127.0.0.1:6379/3?password_file={redis_file}",  # read by each new connection
    ]

    env["SECRET_KEY_FILE"] = str(tmp_path / "missing")
    broken = settings_of(env)
    assert broken.returncode == 1
    assert f"SECRET_KEY_FILE: cannot read {tmp_path / 'missing'}: FileNotFoundError" in broken.stderr


TIER = """
tiers:
  - name: counted
    algorithm: fixed_window
    requests_per_minute: 1000
tenants:
  - name: acme
    tier: counted
"""


def test_rotated_database_and_redis_passwords_are_used_by_new_connections_without_a_restart(
    gateway_factory, configure, make_key, tmp_path
):
    """PgBouncer checks the database password, a Redis of the test's own its password. Both are
    rotated on the server, the files rewritten, and every connection the gateway had is dropped:
    the gateway's new connections log in with the new passwords (the old ones are refused by
    then), so requests are admitted, counted in Redis and recorded, with no restart."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    db_file, redis_file = secrets_dir / "db-password", secrets_dir / "redis-password"
    db_first, db_second = "db-first-" + "d" * 20, "db-second-" + "e" * 20
    redis_first, redis_second = "redis-first-" + "r" * 20, "redis-second-" + "s" * 20
    rotate(db_file, db_first)
    rotate(redis_file, redis_first)
    bouncer = PgBouncer(password=db_first)
    node = Node(port=free_port_pair(), dir=tmp_path / "redis")
    node.dir.mkdir()
    node.start()
    node.client().config_set("requirepass", redis_first)
    try:
        configure(mock_echo_yaml() + TIER)
        key = make_key("acme")
        gateway = gateway_factory(
            DATABASE_URL=bouncer.url,
            DATABASE_PASSWORD_FILE=str(db_file),
            GATEWAY_DATABASE_TRANSACTION_POOLING="true",
            REDIS_URL=f"redis://127.0.0.1:{node.port}/0",
            REDIS_PASSWORD_FILE=str(redis_file),
            GATEWAY_MOCK_CHUNK_DELAY_MS="0",
        )
        admin = redis.Redis(host="127.0.0.1", port=node.port, password=redis_first, socket_timeout=5)

        def ask(i: int) -> httpx.Response:
            return httpx.post(
                f"{gateway.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.raw}"},
                json={"model": "mock-echo", "messages": [{"role": "user", "content": f"n{i}"}]},
                timeout=30,
            )

        assert [ask(i).status_code for i in range(3)] == [200, 200, 200]
        records(3)

        admin.config_set("requirepass", redis_second)
        rotate(redis_file, redis_second)
        admin.client_kill_filter(_type="normal", skipme=True)
        bouncer.set_password(db_second)
        rotate(db_file, db_second)
        wait_for(lambda: _refused(bouncer, db_first), timeout=10)  # PgBouncer read users.txt again
        bouncer.drop_clients()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=node.port, password=redis_first, socket_timeout=5).ping()

        # the first requests after the drop may meet a dropped connection (the limiter fails
        # open; the usage writer retries); none is lost
        answered = [ask(i).status_code for i in range(3, 9)]
        assert answered == [200] * 6
        assert len(records(9)) == 9
        per_line: dict[bytes, int] = {}  # each requests-per-minute line's windows
        for counter in admin.scan_iter(match="*:rpm:f:*"):
            line = counter.rsplit(b":", 1)[0]
            per_line[line] = per_line.get(line, 0) + int(admin.get(counter) or 0)
        assert per_line and set(per_line.values()) == {9}
        admin.close()
        log = gateway.log()
        for secret in (db_first, db_second, redis_first, redis_second):
            assert secret not in log
    finally:
        node.stop()
        bouncer.stop()


def _refused(bouncer: PgBouncer, password: str) -> bool:
    try:
        bouncer.connect(password).close()
    except psycopg.OperationalError:
        return True
    return False


def test_rotated_secret_key_and_secrets_keys_files_are_followed_by_a_running_gateway(
    openai_upstream, gateway_factory, configure, make_key, tmp_path, settings
):
    """``GATEWAY_SECRETS_KEYS_FILE``: a new key put first, provider keys stored under it (by an
    admin elsewhere), then the old key removed: the running gateway decrypts each. A key it did
    not follow would leave the provider without a key. ``SECRET_KEY_FILE``: sign-ins after the
    rotation are tied to the new key, the admin session made before it still holds."""
    keys_file, secret_key_file = tmp_path / "secrets-keys", tmp_path / "secret-key"
    old_fernet, new_fernet = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_secret, new_secret = "secret-key-before-" + "o" * 40, "secret-key-after-" + "n" * 40
    rotate(keys_file, old_fernet)
    rotate(secret_key_file, old_secret)
    configure(provider_yaml(openai_upstream.base_url, str(tmp_path / "no-such-file")))
    key = make_key("acme")

    def store(api_key: str, keys: list[str]) -> None:
        """The provider's key entered in the admin of a process holding ``keys``."""
        settings.GATEWAY_SECRETS_KEYS = keys
        with transaction.atomic():
            Provider.objects.filter(name="filed").update(api_key_encrypted=encrypt_secret(api_key))
            bump_revision()

    store("sk-stored-one", [old_fernet])
    gateway = gateway_factory(
        SECRET_KEY="",
        SECRET_KEY_FILE=str(secret_key_file),
        GATEWAY_SECRETS_KEYS="",
        GATEWAY_SECRETS_KEYS_FILE=str(keys_file),
        GATEWAY_SECRET_FILES_CHECK_SECONDS="0.2",
    )
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)

    def upstream_saw(api_key: str) -> bool:
        try:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        except openai.APIError:
            return False
        return openai_upstream.requests[-1].headers["authorization"] == f"Bearer {api_key}"

    assert upstream_saw("sk-stored-one")
    password = "pw-" + "p" * 20
    User.objects.create_superuser("root", "root@example.com", password)
    with signed_in(gateway.base_url, "root", password) as before:
        assert before.get("/admin/").status_code == 200

        rotate(keys_file, f"{new_fernet}\n{old_fernet}")
        rotate(secret_key_file, new_secret)
        store("sk-stored-two", [new_fernet, old_fernet])
        wait_for(lambda: upstream_saw("sk-stored-two"), timeout=15, interval=0.3)
        rotate(keys_file, new_fernet)
        store("sk-stored-three", [new_fernet])
        wait_for(lambda: upstream_saw("sk-stored-three"), timeout=15, interval=0.3)

        assert before.get("/admin/").status_code == 200  # signed in under the previous key
    with signed_in(gateway.base_url, "root", password) as after:
        stored = Session.objects.get(pk=after.cookies["sessionid"])
    root = User.objects.get(username="root")
    with override_settings(SECRET_KEY=new_secret, SECRET_KEY_FALLBACKS=[]):  # signed with the new key
        assert stored.get_decoded()["_auth_user_hash"] == root.get_session_auth_hash()
    with override_settings(SECRET_KEY=old_secret, SECRET_KEY_FALLBACKS=[]):
        assert stored.get_decoded() == {}  # the old key does not open it
    client.close()
    log = gateway.log()
    for secret in ("sk-stored-one", "sk-stored-two", "sk-stored-three", old_secret, new_secret):
        assert secret not in log
