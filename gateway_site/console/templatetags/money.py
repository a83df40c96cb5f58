"""``{% load money %}`` then ``{{ amount|usd }}``: the one money format (``quotas.money``)."""

from __future__ import annotations

from decimal import Decimal

from django import template

from quotas.money import usd as _usd

register = template.Library()


@register.filter
def usd(value: Decimal | int | str | float | None) -> str:
    return _usd(value)
