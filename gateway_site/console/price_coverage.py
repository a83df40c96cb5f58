"""Which deployments would serve requests for nothing without anyone having said so.

A deployment is priced when it is declared free (``Deployment.free``: the built-in mock, a
self-hosted model) or when the price in force now charges something: the latest price version
already in force (``DeploymentPrice``), else the deployment's own prices. One that is neither
would cost $0 on every request, so no cost quota would ever apply to it: ``applyconfig`` and
the admin refuse it, naming it. A free deployment takes no prices of its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from accounting.models import DeploymentPrice
from accounting.prices import versions_in_force
from providers.models import Deployment

ZERO = Decimal("0")


def charges(*, input_per_million: Decimal | None, output_per_million: Decimal | None) -> bool:
    """Whether a price charges anything (an empty price is 0)."""
    return (input_per_million or ZERO) > 0 or (output_per_million or ZERO) > 0


def unpriced(deployments: Iterable[Deployment], *, at: dt.datetime) -> list[Deployment]:
    """The deployments, of ``deployments``, that are not free and whose price in force at ``at``
    charges nothing."""
    candidates = [d for d in deployments if not d.free]
    versions = versions_in_force([d.pk for d in candidates], at=at)
    missing: list[Deployment] = []
    for deployment in candidates:
        now: Deployment | DeploymentPrice = versions.get(deployment.pk) or deployment
        if not charges(input_per_million=now.input_per_million, output_per_million=now.output_per_million):
            missing.append(deployment)
    return missing


def unpriced_message(labels: Sequence[str]) -> str:
    """What to do about the deployments ``labels`` (each ``model -> provider/upstream model``)."""
    subject = f"deployment {labels[0]} has" if len(labels) == 1 else f"deployments {', '.join(labels)} have"
    return (
        f"{subject} no price: give each input_per_million / output_per_million, a price version "
        "(a prices: entry, --prices FILE or --default-prices), or declare it free "
        "(free: true in applyconfig, Free in the admin)"
    )
