"""The PII redactor: each pattern, look-alikes it must leave alone, stable keyed placeholders."""

from __future__ import annotations

import pytest

from gateway_site.observability.redaction import Redactor, luhn_valid, redaction_key

REDACTOR = Redactor(b"test-key")
GW_KEY = "sk-gw-" + "Ab3_-x" * 7 + "Z"


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("EMAIL", "bob.smith+tag@example.co.uk"),
        ("CARD", "4111 1111 1111 1111"),
        ("CARD", "4111-1111-1111-1111"),
        ("CARD", "378282246310005"),
        ("SSN", "123-45-6789"),
        ("PHONE", "+14155552671"),
        ("PHONE", "(415) 555-2671"),
        ("PHONE", "415-555-2671"),
        ("PHONE", "415.555.2671"),
        ("PHONE", "+1 415 555 2671"),
        ("PHONE", "+44 20 7946 0958"),
        ("IP", "192.168.10.254"),
        ("IP", "2001:db8::8a2e:370:7334"),
        ("IP", "fe80:0:0:0:200:f8ff:fe21:67cf"),
        ("OPENAI_KEY", "sk-proj-Abc123_def456-ghi789JKL0"),
        ("OPENAI_KEY", "sk-Abc123def456ghi789JKL0mno"),
        ("ANTHROPIC_KEY", "sk-ant-api03-Abc123_def456-ghi789JKL"),
        ("GOOGLE_KEY", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
        ("AWS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        ("GITHUB_TOKEN", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("GITHUB_TOKEN", "github_pat_11ABCDEFG0123456789_abcdefghijk"),
        ("GATEWAY_KEY", GW_KEY),
    ],
)
@pytest.mark.parametrize(("before", "after"), [("value ", " here"), ("(", ")."), ("", "")])
def test_each_pattern_is_replaced_by_its_typed_placeholder(
    label: str, value: str, before: str, after: str
) -> None:
    redacted = REDACTOR.redact(f"{before}{value}{after}")
    assert redacted == f"{before}{REDACTOR.placeholder(label, value)}{after}"


def test_a_bearer_token_keeps_its_scheme() -> None:
    token = "eyJhbGciOi.JIUzI1NiJ9-x_y"
    assert REDACTOR.redact(f"Authorization: Bearer {token}") == (
        f"Authorization: Bearer {REDACTOR.placeholder('BEARER', token)}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "meeting on 2024-01-15 at 12:30:45",
        "order 1234 5678 9012 3456 (fails Luhn)",
        "tracking 4111111111111112",
        "python 3.11.4 and release v10.0.0.1 and 1.2.3.4.5",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "answer 42, port 8080, zip 94103, year 1999",
        "ext 555-1234 and invoice 12-345-6789",
        "not an ip 999.1.1.1 nor 256.256.256.256",
        "C++ std::vector and a::b and ::",
        "mask the word sk-short and AKIA alone",
        "user@localhost is not a routable address",
        "the bearer of bad news",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert REDACTOR.redact(text) == text


def test_equal_values_get_equal_placeholders_and_different_values_different_ones() -> None:
    out = REDACTOR.redact("a@example.com, b@example.com, a@example.com")
    first, second, third = out.split(", ")
    assert first == third == REDACTOR.placeholder("EMAIL", "a@example.com")
    assert second != first
    assert len(first) == len("[EMAIL:12345678]")


def test_the_placeholder_depends_on_the_key() -> None:
    other = Redactor(b"another-key")
    assert other.placeholder("SSN", "123-45-6789") != REDACTOR.placeholder("SSN", "123-45-6789")


def test_several_kinds_in_one_text() -> None:
    text = "Mail jo@ex.io, SSN 078-05-1120, card 5555555555554444, from 10.0.0.1"
    assert REDACTOR.redact(text) == (
        f"Mail {REDACTOR.placeholder('EMAIL', 'jo@ex.io')}, "
        f"SSN {REDACTOR.placeholder('SSN', '078-05-1120')}, "
        f"card {REDACTOR.placeholder('CARD', '5555555555554444')}, "
        f"from {REDACTOR.placeholder('IP', '10.0.0.1')}"
    )


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_redaction_key_is_configured_or_derived_never_the_secret_itself() -> None:
    assert redaction_key(configured="k1", secret_key="s") == b"k1"
    derived = redaction_key(configured="", secret_key="s")
    assert derived != b"s"
    assert len(derived) == 32
    assert derived == redaction_key(configured="", secret_key="s")


OPERATOR_KEY = "opk7Q2mZt9RxLw4VbN8c"  # matches no key format: only the known value finds it


def test_known_secrets_are_found_whatever_they_look_like() -> None:
    assert REDACTOR.redact(f"echo {OPERATOR_KEY}") == f"echo {OPERATOR_KEY}"
    with_key = REDACTOR.with_secrets([OPERATOR_KEY, "short"])
    assert with_key.redact(f"echo {OPERATOR_KEY}!{OPERATOR_KEY}x") == (
        f"echo {REDACTOR.placeholder('PROVIDER_KEY', OPERATOR_KEY)}!"
        f"{REDACTOR.placeholder('PROVIDER_KEY', OPERATOR_KEY)}x"
    )
    assert with_key.redact("a short word") == "a short word"  # under MIN_SECRET_LENGTH: not looked for


def test_known_secrets_win_over_the_other_rules_and_the_longest_first() -> None:
    longer = OPERATOR_KEY + "-more.+*"  # regex metacharacters are taken literally
    with_keys = REDACTOR.with_secrets([OPERATOR_KEY, longer])
    assert with_keys.redact(f"Authorization: Bearer {longer}") == (
        f"Authorization: Bearer {REDACTOR.placeholder('PROVIDER_KEY', longer)}"
    )
    assert with_keys.redact("mail jo@ex.io") == f"mail {REDACTOR.placeholder('EMAIL', 'jo@ex.io')}"


def test_no_usable_secret_leaves_the_redactor_as_it_is() -> None:
    assert REDACTOR.with_secrets(["", "1234567"]) is REDACTOR
