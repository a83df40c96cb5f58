"""The price table as stored (``DeploymentPrice``): loading it for the gateway's snapshot and
upserting versions (``applyconfig``'s ``prices:`` section, ``--prices FILE``, the shipped
defaults in ``accounting/data/default_prices.yaml``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path

from accounting.models import DeploymentPrice
from accounting.pricing import PriceTable, PriceVersion

DEFAULT_PRICES_PATH = Path(__file__).resolve().parent / "data" / "default_prices.yaml"


def load_price_table() -> PriceTable:
    versions: dict[int, list[PriceVersion]] = defaultdict(list)
    for row in DeploymentPrice.objects.order_by("deployment_id", "effective_from"):
        versions[row.deployment_id].append(
            PriceVersion(
                id=row.pk,
                input_per_million=row.input_per_million,
                output_per_million=row.output_per_million,
                cached_input_per_million=row.cached_input_per_million,
                cache_write_per_million=row.cache_write_per_million,
                effective_from=row.effective_from.timestamp(),
            )
        )
    return PriceTable(versions={key: tuple(items) for key, items in versions.items()})


def versions_in_force(deployment_ids: Collection[int], *, at: dt.datetime) -> dict[int, DeploymentPrice]:
    """The price version in force at ``at`` of each of ``deployment_ids`` that has one."""
    current: dict[int, DeploymentPrice] = {}
    rows = DeploymentPrice.objects.filter(deployment_id__in=deployment_ids, effective_from__lte=at)
    for row in rows.order_by("deployment_id", "effective_from"):
        current[row.deployment_id] = row  # the latest one started wins
    return current


def price_upsert(
    *,
    deployment_id: int,
    label: str,
    effective_from: dt.datetime,
    prices: dict[str, Decimal | None],
    source: str,
) -> str | None:
    """Create or update one version; returns "created", "updated" or None (unchanged)."""
    wanted = {**prices, "deployment_label": label}
    row = DeploymentPrice.objects.filter(deployment_id=deployment_id, effective_from=effective_from).first()
    if row is None:
        DeploymentPrice.objects.create(
            deployment_id=deployment_id, effective_from=effective_from, source=source, **wanted
        )
        return "created"
    if all(getattr(row, name) == value for name, value in wanted.items()):
        return None
    for name, value in wanted.items():
        setattr(row, name, value)
    row.save()
    return "updated"
