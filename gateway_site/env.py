"""Typed readers for environment variables: parsed once at settings import, loud on bad values."""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

from quotas.stores.redis_target import with_password_file as redis_with_password_file


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def read_secret_file(name: str, path: str) -> str:
    """A secret file's content without its trailing newline (as Kubernetes and Docker secrets,
    and Vault Agent templates, write them). The message names the variable, never the content."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {type(exc).__name__}") from None


def env_secret(name: str, default: str) -> str:
    """``NAME``, else the content of the file ``NAME_FILE`` names, else ``default``."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "")
    return read_secret_file(f"{name}_FILE", path) if path else default


def with_password(url: str, name: str) -> str:
    """``url`` with the password of the file ``NAME`` names (unset: ``url`` as it is), put in
    its user information (percent-encoded), replacing any password there."""
    path = os.environ.get(name, "")
    if not path or not url:
        return url
    password = read_secret_file(name, path)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ImproperlyConfigured(f"{name} needs a URL with a scheme (scheme://host...)")
    authority_end = len(rest) if "/" not in rest else rest.index("/")
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hosts = authority.rpartition("@")
    user = userinfo.partition(":")[0] if at else ""
    return f"{scheme}://{user}:{quote(password, safe='')}@{hosts}{tail}"


def with_password_file(url: str, name: str) -> str:
    """``url`` naming the password file ``NAME`` names (unset: ``url`` as it is), for the Redis
    clients to read at each new connection (``quotas.stores.redis_target``); the file must be
    readable now."""
    path = os.environ.get(name, "")
    if not path or not url:
        return url
    if not read_secret_file(name, path):
        raise ImproperlyConfigured(f"{name}: {path} is empty")
    return redis_with_password_file(url, path)


def secrets_keys(text: str) -> list[str]:
    """``GATEWAY_SECRETS_KEYS`` as written: comma- or newline-separated keys."""
    return [k.strip() for k in text.replace("\n", ",").split(",") if k.strip()]


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name) or default
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def env_timezone(name: str, default: str) -> ZoneInfo:
    raw = os.environ.get(name) or default
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone such as Europe/Paris, got {raw!r}"
        ) from None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALL_NETWORKS = ("0.0.0.0/0", "::/0")


def env_networks(name: str, default: str) -> tuple[Network, ...]:
    """Comma-separated CIDR networks (a bare address is a one-address network); ``*`` means all."""
    raw = os.environ.get(name)
    items = [item.strip() for item in (default if raw is None else raw).split(",") if item.strip()]
    if items == ["*"]:
        items = list(ALL_NETWORKS)
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        message = f"{name} must be comma-separated CIDR networks or *, got {raw!r}: {exc}"
        raise ImproperlyConfigured(message) from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def tracing_enabled() -> bool:
    """OpenTelemetry's own switches: on when an OTLP endpoint is set, unless
    ``OTEL_SDK_DISABLED`` is true or ``OTEL_TRACES_EXPORTER`` is ``none`` (``otlp``, the
    default, is the only exporter the gateway ships)."""
    exporter = env_choice("OTEL_TRACES_EXPORTER", "otlp", ("otlp", "none"))
    endpoint = env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") or env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    return exporter == "otlp" and not env_bool("OTEL_SDK_DISABLED", False) and bool(endpoint)
