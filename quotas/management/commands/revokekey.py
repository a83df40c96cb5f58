from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quotas.services import KeyNotFound, key_find, keys_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given the raw key or its display prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", metavar="KEY_OR_PREFIX")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = key_find(options["key"])
        except KeyNotFound as exc:
            raise CommandError(str(exc)) from None
        if keys_revoke([key.pk]) == 0:
            self.stdout.write(f"key {key.prefix}… was already revoked")
        else:
            self.stdout.write(f"revoked key {key.prefix}… ({key.name}, tenant {key.tenant.name})")
