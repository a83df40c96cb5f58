"""The one way money is written, everywhere it is shown (the console pages, the reports API and
its CSV). Amounts are US dollars held as ``Decimal``.

* ``usd(value)``: for people. A dollar sign, thousands separators, rounded half-up to at most
  ``PLACES`` decimals with trailing zeros dropped but never fewer than two: ``$0.00``,
  ``$0.0179``, ``$0.313059``, ``$1,234.50``, ``-$2.00``. A positive amount too small to show is
  ``<$0.000001``. Never an exponent, never sixteen digits.
* ``usd_plain(value)``: for programs (JSON, CSV): exact to the ledger's scale (``STORED_PLACES``
  decimals, the ``cost_usd`` columns'), trailing zeros dropped, no dollar sign, no separators,
  never an exponent (``0.0179``, ``1234.5``, ``0.0000375``, ``0``): a spreadsheet reads it as a
  number, and ``usd(usd_plain(x)) == usd(x)``, so a page and the API agree on every digit shown."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PLACES = 6
STORED_PLACES = 10
_QUANTUM = Decimal(1).scaleb(-PLACES)
_STORED_QUANTUM = Decimal(1).scaleb(-STORED_PLACES)
_SMALLEST = f"<${_QUANTUM:f}"


def _rounded(value: Decimal | int | str | float | None, quantum: Decimal = _QUANTUM) -> Decimal:
    if value is None:
        return Decimal(0)
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def _digits(amount: Decimal, minimum: int, places: int = PLACES) -> str:
    """``amount`` (already rounded) in fixed point with between ``minimum`` and ``places``
    decimals, trailing zeros dropped."""
    text = f"{abs(amount):,.{places}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(minimum, "0")
    return f"{whole}.{fraction}" if fraction else whole


def usd(value: Decimal | int | str | float | None) -> str:
    """``value`` dollars for a page: ``$1,234.50``, ``$0.0179``, ``-$2.00``, ``<$0.000001``."""
    raw = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    amount = _rounded(raw)
    if not amount and raw > 0:
        return _SMALLEST
    sign = "-" if amount < 0 else ""
    return f"{sign}${_digits(amount, 2)}"


def usd_plain(value: Decimal | int | str | float | None) -> str:
    """``value`` dollars for JSON and CSV: ``1234.5``, ``0.0179``, ``0.0000375``, ``0``."""
    amount = _rounded(value, _STORED_QUANTUM)
    if not amount:
        return "0"
    sign = "-" if amount < 0 else ""
    return sign + _digits(amount, 0, STORED_PLACES).replace(",", "")
