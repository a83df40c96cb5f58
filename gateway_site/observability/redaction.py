"""The PII redactor: finds personal data and credentials in free text and replaces each with a
typed placeholder carrying a short keyed hash, ``[EMAIL:1a2b3c4d]``, so that equal values still
correlate across log lines and spans while the value itself is gone.

What it finds, in this order (earlier kinds win where matches would overlap): provider API keys
and bearer tokens (``Bearer …``, our ``sk-gw-`` keys, Anthropic ``sk-ant-``, OpenAI ``sk-`` /
``sk-proj-``, Google ``AIza``, AWS ``AKIA``/``ASIA`` access key ids, GitHub ``ghp_``… and
``github_pat_`` tokens), e-mail addresses, credit card numbers (13 to 19 digits, spaces or dashes
allowed, Luhn-checked), US social security numbers (``123-45-6789``), phone numbers (E.164 and
the common US formats), IPv4 and IPv6 addresses (validated by ``ipaddress``; IPv6 forms with
fewer than four hex digits, such as ``::1``, are left alone). ``with_secrets`` adds known secret
values, found wherever they stand whatever they look like (``PROVIDER_KEY``, before every other
kind): the configured provider credentials, which need not match any key format.

The hash is HMAC-SHA256 under a secret key (``GATEWAY_REDACTION_KEY``, else derived from
``SECRET_KEY``): a plain hash of a value from a small space (an SSN has 10^9) could be reversed
by trying them all. Pure: no Django, no I/O; patterns are compiled once, at import."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (the check every card number passes)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(candidate: str) -> bool:
    return 10 <= sum(c.isdigit() for c in candidate) <= 15


def _is_ipv4(candidate: str) -> bool:
    try:
        ipaddress.IPv4Address(candidate)
    except ValueError:
        return False
    return True


def _is_ipv6(candidate: str) -> bool:
    if sum(c != ":" for c in candidate) < 4:
        return False  # "::1", "a::b": too short to tell from code (``std::x``); not personal data
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of sensitive value: ``pattern``'s group ``value`` is replaced (the rest of the
    match is kept, e.g. the ``Bearer`` scheme), when ``check`` (if any) accepts it."""

    label: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None


_TOKEN_END = r"(?![A-Za-z0-9_\-])"  # noqa: S105 (a regex, not a password)
# A known secret shorter than this is not looked for: it would match ordinary words.
MIN_SECRET_LENGTH = 8

RULES: tuple[Rule, ...] = (
    Rule("BEARER", re.compile(r"(?i:\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=\-]{8,})")),
    Rule("GATEWAY_KEY", re.compile(r"(?P<value>\bsk-gw-[A-Za-z0-9_\-]{20,})" + _TOKEN_END)),
    Rule("ANTHROPIC_KEY", re.compile(r"(?P<value>\bsk-ant-[A-Za-z0-9_\-]{20,})" + _TOKEN_END)),
    Rule("OPENAI_KEY", re.compile(r"(?P<value>\bsk-[A-Za-z0-9_\-]{16,})" + _TOKEN_END)),
    Rule("GOOGLE_KEY", re.compile(r"(?P<value>\bAIza[0-9A-Za-z_\-]{35})" + _TOKEN_END)),
    Rule("AWS_KEY", re.compile(r"(?P<value>\b(?:AKIA|ASIA)[0-9A-Z]{16})(?![0-9A-Za-z])")),
    Rule(
        "GITHUB_TOKEN",
        re.compile(r"(?P<value>\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}))" + _TOKEN_END),
    ),
    Rule(
        "EMAIL",
        re.compile(r"(?P<value>\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})\b"),
    ),
    Rule("CARD", re.compile(r"(?<![\w\-])(?P<value>\d(?:[ \-]?\d){12,18})(?![\w\-])"), _is_card),
    Rule(
        "SSN", re.compile(r"(?<![\w\-])(?P<value>(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4})(?![\w\-])")
    ),
    Rule(
        "PHONE",
        re.compile(
            r"(?<![\w+\-])(?P<value>"
            r"\+[1-9]\d{7,14}"  # E.164
            r"|\+[1-9]\d{0,2}(?:[ .\-]\d{1,4}){2,5}"  # +44 20 7946 0958
            r"|(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ ]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"  # (415) 555-2671
            r")(?![\w\-])"
        ),
        _is_phone,
    ),
    Rule(
        "IP",
        re.compile(r"(?<![\w.])(?P<value>\d{1,3}(?:\.\d{1,3}){3})(?!\.?\w)"),
        _is_ipv4,
    ),
    Rule(
        "IP",
        re.compile(r"(?<![\w:])(?P<value>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![\w:])"),
        _is_ipv6,
    ),
)


class Redactor:
    """``redact(text)`` replaces every sensitive value found in ``text``. ``key`` makes the
    placeholder hashes unguessable; the same key gives the same placeholder for a value."""

    def __init__(self, key: bytes, *, rules: tuple[Rule, ...] = RULES) -> None:
        self._key = key
        self._rules = rules

    def without(self, *labels: str) -> Redactor:
        """The same redactor minus the rules of ``labels`` (same key, same placeholders)."""
        return Redactor(self._key, rules=tuple(r for r in self._rules if r.label not in labels))

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """The same redactor that also replaces each of ``secrets`` (at least
        ``MIN_SECRET_LENGTH`` characters; shorter ones are ignored) wherever it appears, before
        any other rule, as ``[PROVIDER_KEY:…]``."""
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=lambda s: (-len(s), s))
        if not values:
            return self
        pattern = re.compile("(?P<value>" + "|".join(re.escape(v) for v in values) + ")")
        return Redactor(self._key, rules=(Rule("PROVIDER_KEY", pattern), *self._rules))

    def placeholder(self, label: str, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"[{label}:{digest[:8]}]"

    def redact(self, text: str) -> str:
        for rule in self._rules:
            text = rule.pattern.sub(functools.partial(self._replace, rule), text)
        return text

    def _replace(self, rule: Rule, match: re.Match[str]) -> str:
        value = match.group("value")
        if rule.check is not None and not rule.check(value):
            return match.group(0)
        start, end = match.span("value")
        whole_start = match.start()
        text = match.group(0)
        return text[: start - whole_start] + self.placeholder(rule.label, value) + text[end - whole_start :]


def redaction_key(*, configured: str, secret_key: str) -> bytes:
    """The HMAC key: ``configured`` when set, else one derived from ``secret_key`` (never the
    secret key itself, so a placeholder says nothing about it)."""
    if configured:
        return configured.encode("utf-8")
    return hashlib.sha256(b"llm-gateway redaction\x00" + secret_key.encode("utf-8")).digest()
