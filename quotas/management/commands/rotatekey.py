from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quotas.services import KeyNotFound, key_find, key_rotate


class Command(BaseCommand):
    help = (
        "Give an API key a new secret, printed once alone on the last line. The old secret keeps "
        "working for --grace-hours (default 0: it stops at once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", metavar="KEY_OR_PREFIX")
        parser.add_argument("--grace-hours", type=float, default=0.0, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        grace_hours: float = options["grace_hours"]
        if grace_hours < 0:
            raise CommandError("--grace-hours must be zero or more")
        try:
            key = key_find(options["key"])
        except KeyNotFound as exc:
            raise CommandError(str(exc)) from None
        if key.revoked_at is not None:
            raise CommandError(f"key {key.prefix}… is revoked; issue a new key instead")
        old_prefix = key.prefix
        raw = key_rotate(key, grace=dt.timedelta(hours=grace_hours))
        until = (
            f"until {key.previous_expires_at.isoformat(timespec='seconds')}"
            if key.previous_expires_at is not None
            else "no longer"
        )
        self.stderr.write(
            f"rotated key {old_prefix}… ({key.name}, tenant {key.tenant.name}) to {key.prefix}…; "
            f"the old secret works {until}. The new secret is shown only once:"
        )
        self.stdout.write(raw)
