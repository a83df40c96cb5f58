from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounting.prices import DEFAULT_PRICES_PATH
from gateway_site.console.declarative import (
    ApplyReport,
    ConfigError,
    apply_config,
    parse_config,
    refuse_unpriced,
)


class Command(BaseCommand):
    help = (
        "Upsert providers, models (deployments, prices), rate tiers, tenants and price versions from "
        "a YAML file; --prices FILE and --default-prices add price versions (docs/usage-and-billing.md). "
        "All files apply in one transaction, refused while an enabled deployment has no price "
        "and is not declared free."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, nargs="?")
        parser.add_argument(
            "--prices", type=Path, action="append", default=[], help="a file with a `prices:` section"
        )
        parser.add_argument(
            "--default-prices", action="store_true", help=f"apply the shipped {DEFAULT_PRICES_PATH.name}"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sources: list[tuple[Path, str]] = []
        if options["file"] is not None:
            sources.append((options["file"], "config"))
        sources += [(path, f"file:{path.name}"[:64]) for path in options["prices"]]
        if options["default_prices"]:
            sources.append((DEFAULT_PRICES_PATH, "defaults"))
        if not sources:
            raise CommandError("give a configuration FILE, --prices FILE or --default-prices")
        with transaction.atomic():
            reports = [self._apply(path, source) for path, source in sources]
            try:
                refuse_unpriced()  # once every source is in: a price may come from any of them
            except ConfigError as exc:
                raise CommandError(f"nothing applied: {exc}") from None
        for report in reports:
            self._print(report)

    def _apply(self, path: Path, source: str) -> ApplyReport:
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        try:
            return apply_config(parse_config(text), price_source=source, check_prices=False)
        except ConfigError as exc:
            raise CommandError(f"{path}: {exc}") from None

    def _print(self, report: ApplyReport) -> None:
        for verb, items in (
            ("created", report.created),
            ("updated", report.updated),
            ("deleted", report.deleted),
        ):
            for item in items:
                self.stdout.write(f"{verb} {item}")
        if not report.changed:
            self.stdout.write("no changes")
