"""The one money format: exact strings for people (``usd``) and for programs (``usd_plain``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quotas.money import usd, usd_plain


@pytest.mark.parametrize(
    ("value", "shown", "plain"),
    [
        (Decimal(0), "$0.00", "0"),
        (None, "$0.00", "0"),
        (Decimal("0.0179"), "$0.0179", "0.0179"),
        (Decimal("0.017900"), "$0.0179", "0.0179"),
        (Decimal("0.0179000000000000"), "$0.0179", "0.0179"),
        (Decimal("0.313059000000000"), "$0.313059", "0.313059"),
        (Decimal("0.3130594"), "$0.313059", "0.3130594"),
        (Decimal("0.3130595"), "$0.31306", "0.3130595"),
        (Decimal("0.0000375"), "$0.000038", "0.0000375"),
        (Decimal("0.00000000004"), "<$0.000001", "0"),
        (Decimal("1234.5"), "$1,234.50", "1234.5"),
        (Decimal("1234567.891"), "$1,234,567.891", "1234567.891"),
        (Decimal("10.000"), "$10.00", "10"),
        (Decimal("1E+1"), "$10.00", "10"),
        (Decimal("2.5E-7"), "<$0.000001", "0.00000025"),
        (Decimal("0.0000005"), "$0.000001", "0.0000005"),
        (Decimal("-2"), "-$2.00", "-2"),
        (3, "$3.00", "3"),
        ("0.25", "$0.25", "0.25"),
    ],
)
def test_each_amount_has_exactly_one_spelling(value, shown, plain):
    assert usd(value) == shown
    assert usd_plain(value) == plain


def test_never_an_exponent_and_pages_and_programs_agree():
    for exponent in range(-12, 10):
        value = Decimal(7).scaleb(exponent)
        shown, plain = usd(value), usd_plain(value)
        assert "E" not in shown + plain and "e" not in shown + plain
        assert len(shown.partition(".")[2]) <= 6
        assert len(plain.partition(".")[2]) <= 10
        if exponent >= -10:
            assert usd(plain) == shown
