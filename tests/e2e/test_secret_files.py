"""Secrets from files under a running Daphne gateway: a provider's ``api_key_file`` rotated
(written anew, as Kubernetes swaps a mounted secret) is used by the next requests without a
restart, and never shows in a log or an error; settings read from ``*_FILE`` variables."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest

from tests.conftest import ROOT, wait_for
from tests.e2e.conftest import MODEL, records
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
        "print(json.dumps([s.SECRET_KEY, s.GATEWAY_SECRETS_KEYS, d['USER'], d['PASSWORD'], s.REDIS_URL]))"
    )
    result = settings_of(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '["secret-key-from-a-file-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", '
        '["hHvgaAzhZ6B0ulFBQWCvdp4I1zlV4h3kw0C4_hPg6k8=", "0Qy4aTaw3nOWO9-mHhe1ls7jD_sWJ9aWXyV5iEg7p0M="], '
        '"gateway", "db p@ss:w/rd", "redis://:redis-secret@127.0.0.1:6379/3"]'
    )

    env["SECRET_KEY_FILE"] = str(tmp_path / "missing")
    broken = settings_of(env)
    assert broken.returncode == 1
    assert f"SECRET_KEY_FILE: cannot read {tmp_path / 'missing'}: FileNotFoundError" in broken.stderr
