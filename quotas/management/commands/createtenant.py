from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from quotas.models import RateTier
from quotas.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Tenant slug (letters, digits, - and _).")
        parser.add_argument("--tier", help="Name of an existing rate tier.")
        parser.add_argument("--display-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_create(
                name=options["name"], tier_name=options["tier"], display_name=options["display_name"]
            )
        except ValidationError:
            raise CommandError(
                f"{options['name']!r} is not a valid tenant name: "
                "use up to 64 letters, digits, hyphens and underscores"
            ) from None
        except RateTier.DoesNotExist:
            raise CommandError(f"no rate tier named {options['tier']!r}") from None
        except IntegrityError:
            raise CommandError(f"a tenant named {options['name']!r} already exists") from None
        self.stdout.write(f"created tenant {tenant.name}")
