from __future__ import annotations

import datetime as dt
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounting.spend import Reconciled, reconcile_redis, recorded_spend
from quotas.budget import from_micro
from quotas.stores.redis_target import sync_client


class Command(BaseCommand):
    help = (
        "Rebuild the current period's spend of every cost quota in Redis from the usage records. "
        "Raises a counter that is behind the records; --exact also lowers one that is ahead. "
        "Releases the reservations whose lease ended or was lost (a crashed gateway's). "
        "Run it periodically (e.g. every 5 minutes from cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--exact",
            action="store_true",
            help="Set each counter to the records' total even when it is higher (use while no "
            "gateway serves: spend still queued in a gateway's usage writer would be forgotten).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        spends = recorded_spend(now=dt.datetime.now(dt.UTC), tz=settings.GATEWAY_QUOTA_TIMEZONE)
        if not settings.REDIS_URL:
            self.stdout.write(
                "REDIS_URL is not set: nothing to reconcile (without Redis each gateway process "
                "starts its quota counters from the usage records)"
            )
            return
        client = sync_client(settings.REDIS_URL, timeout=5)
        try:
            results = reconcile_redis(
                client, spends, prefix=settings.GATEWAY_REDIS_PREFIX, exact=options["exact"]
            )
        except redis.RedisError as exc:
            raise CommandError(f"Redis: {exc}") from None
        finally:
            client.close()
        for item in results:
            self.stdout.write(_line(item))
        if not results:
            self.stdout.write("no cost quotas")


def _line(item: Reconciled) -> str:
    quota = item.spend.quota
    verb = "unchanged" if item.before == item.after else ("raised" if item.after > item.before else "lowered")
    line = (
        f"quota {quota.pk} ({quota}) period {item.spend.period.key}: "
        f"records ${from_micro(item.spend.micro)}, "
        f"counter ${from_micro(item.before)} -> ${from_micro(item.after)} ({verb})"
    )
    if item.released or item.reserved_before != item.reserved_after:
        line += (
            f"; released {item.released} orphaned reservation(s), "
            f"reserved ${from_micro(item.reserved_before)} -> ${from_micro(item.reserved_after)}"
        )
    return line
