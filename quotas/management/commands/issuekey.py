from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from quotas.models import Tenant
from quotas.services import key_issue


def parse_expiry(text: str) -> dt.datetime:
    """YYYY-MM-DD (the key works through that day, UTC) or an ISO 8601 date-time."""
    # A bare date first: parse_datetime also accepts one, as the start of that day.
    day = parse_date(text)
    if day is not None:
        moment = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    else:
        parsed = parse_datetime(text)
        if parsed is None:
            raise CommandError(f"--expires: {text!r} is not YYYY-MM-DD or an ISO 8601 date-time")
        moment = parsed
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


class Command(BaseCommand):
    help = "Issue an API key for a tenant. The raw key is printed once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True, help="A label for the key.")
        parser.add_argument(
            "--models", nargs="+", default=[], metavar="PATTERN", help="Glob patterns the key may use."
        )
        parser.add_argument("--expires", help="YYYY-MM-DD or ISO 8601 date-time.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(name=options["tenant"])
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant named {options['tenant']!r}") from None
        expires = parse_expiry(options["expires"]) if options["expires"] else None
        if expires is not None and expires <= timezone.now():
            raise CommandError("--expires is in the past")
        key, raw = key_issue(
            tenant=tenant, name=options["name"], allowed_models=options["models"], expires_at=expires
        )
        self.stderr.write(f"issued key {key.prefix}… for tenant {tenant.name}; it is shown only once:")
        self.stdout.write(raw)
