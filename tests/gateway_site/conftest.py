import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Superusers are created per test; the default PBKDF2 work factor would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
