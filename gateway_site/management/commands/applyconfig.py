from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway_site.declarative import ConfigError, apply_config, parse_config


class Command(BaseCommand):
    help = "Upsert providers, models (deployments, prices) and rate tiers from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        try:
            report = apply_config(parse_config(text))
        except ConfigError as exc:
            raise CommandError(f"{path}: {exc}") from None
        for verb, items in (
            ("created", report.created),
            ("updated", report.updated),
            ("deleted", report.deleted),
        ):
            for item in items:
                self.stdout.write(f"{verb} {item}")
        if not report.changed:
            self.stdout.write("no changes")
