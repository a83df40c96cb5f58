"""Typed readers for environment variables: parsed once at settings import, loud on bad values."""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


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
