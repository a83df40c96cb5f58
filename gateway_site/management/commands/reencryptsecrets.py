"""``reencryptsecrets``: every stored secret (providers' API keys and AWS secret access keys,
stored responses) encrypted again under the newest key of ``GATEWAY_SECRETS_KEYS``, so that
the older keys can then be removed. Run it after putting a new key first in the list (with the
old keys still after it) on every process. Idempotent; rows are updated in batches; a value no
configured key opens is named by row id (never shown) and left as it is."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from providers.models import Provider
from providers.secrets import SecretUnreadable, reencrypt_secret
from stored_responses.models import StoredResponse


class Command(BaseCommand):
    help = "Encrypt every stored secret again under the newest GATEWAY_SECRETS_KEYS key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        unreadable: list[str] = []
        providers = _reencrypt(
            Provider,
            ("api_key_encrypted", "aws_secret_access_key_encrypted"),
            options["batch_size"],
            unreadable,
        )
        responses = _reencrypt(
            StoredResponse, ("response_sealed", "items_sealed"), options["batch_size"], unreadable
        )
        self.stdout.write(f"re-encrypted {providers} provider(s) and {responses} stored response(s)")
        if unreadable:
            names = ", ".join(unreadable)
            raise CommandError(f"{len(unreadable)} row(s) no configured key opens, left as they are: {names}")


def _reencrypt(model: Any, fields: tuple[str, ...], batch_size: int, unreadable: list[str]) -> int:
    """Rows of ``model`` with a secret in ``fields``, re-encrypted; how many were rewritten."""
    done = 0
    last: object = None
    while True:
        rows = model.objects.order_by("pk")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows.only("pk", *fields)[:batch_size])
        if not batch:
            return done
        last = batch[-1].pk
        changed = []
        for row in batch:
            present = [name for name in fields if getattr(row, name)]
            try:
                sealed = {name: reencrypt_secret(getattr(row, name)) for name in present}
            except SecretUnreadable:
                unreadable.append(f"{model._meta.label} {row.pk}")
                continue
            for name, value in sealed.items():
                setattr(row, name, value)
            if present:
                changed.append(row)
        with transaction.atomic():
            model.objects.bulk_update(changed, fields)
        done += len(changed)
