"""``SECRET_KEY_FILE`` and ``GATEWAY_SECRETS_KEYS_FILE`` followed in a running process: a changed
file is applied to the settings (the previous SECRET_KEY kept as a fallback, three at most),
a value that is not Fernet keys is refused, a variable set directly is never overridden, and a
provider secret sealed under a key derived from the previous SECRET_KEY still opens."""

from __future__ import annotations

import logging
import os

from cryptography.fernet import Fernet

from gateway_site.runtime.settings_files import SettingsSecretFiles
from providers.secrets import decrypt_secret, encrypt_secret


def write(path, value: str) -> None:
    staged = path.with_suffix(".new")
    staged.write_text(value + "\n")
    os.replace(staged, path)


def test_a_rotated_secret_key_is_applied_and_the_previous_ones_kept_as_fallbacks(tmp_path, settings):
    path = tmp_path / "secret-key"
    write(path, "key-0")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS, settings.GATEWAY_SECRETS_KEYS = "key-0", [], []
    files = SettingsSecretFiles({"SECRET_KEY_FILE": str(path)})
    sealed = encrypt_secret("sk-sealed-under-key-0")

    assert files.check() is False  # unchanged since the start
    for n in range(1, 6):
        write(path, f"key-{n}")
        assert files.check() is True
    assert files.check() is False
    assert settings.SECRET_KEY == "key-5"
    assert settings.SECRET_KEY_FALLBACKS == ["key-4", "key-3", "key-2"]

    settings.SECRET_KEY_FALLBACKS = ["key-0"]
    assert decrypt_secret(sealed) == "sk-sealed-under-key-0"  # the derived key of a fallback opens it


def test_secrets_keys_follow_the_file_and_a_bad_value_is_refused(tmp_path, settings, caplog):
    path = tmp_path / "secrets-keys"
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    write(path, first)
    settings.GATEWAY_SECRETS_KEYS = [first]
    files = SettingsSecretFiles({"GATEWAY_SECRETS_KEYS_FILE": str(path)})

    write(path, f"{second}\n{first}")
    assert files.check() is True
    assert [second, first] == settings.GATEWAY_SECRETS_KEYS
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway_site.runtime.settings_files"):
        write(path, "not-a-fernet-key")
        assert files.check() is False
    assert [second, first] == settings.GATEWAY_SECRETS_KEYS
    assert [r.getMessage() for r in caplog.records] == [
        "GATEWAY_SECRETS_KEYS_FILE holds a value that is not a Fernet key; keys kept"
    ]
    assert "not-a-fernet-key" not in caplog.text


def test_a_variable_set_directly_is_not_followed(tmp_path, settings):
    path = tmp_path / "secret-key"
    write(path, "from-the-file")
    settings.SECRET_KEY = "set-directly"
    files = SettingsSecretFiles({"SECRET_KEY": "set-directly", "SECRET_KEY_FILE": str(path)})
    write(path, "rotated")
    assert files.check() is False
    assert settings.SECRET_KEY == "set-directly"
