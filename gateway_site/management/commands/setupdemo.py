from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway_site.console.declarative import apply_config, parse_config
from quotas.models import ApiKey, Tenant
from quotas.services import key_issue, tenant_create

DEMO_CONFIG = """
providers:
  - name: mock
    kind: mock
models:
  - name: mock-echo
    description: Built-in mock that echoes the last user message.
    deployments:
      - provider: mock
        model: mock-echo
        free: true
"""


class Command(BaseCommand):
    help = "Create the mock provider, the mock-echo model, and a demo tenant and key if none exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo")

    def handle(self, *args: Any, **options: Any) -> None:
        apply_config(parse_config(DEMO_CONFIG))
        tenant = Tenant.objects.filter(name=options["tenant"]).first() or tenant_create(
            name=options["tenant"]
        )
        if ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).exists():
            self.stdout.write(
                f"tenant {tenant.name} already has a key (issue another with: "
                f"python manage.py issuekey --tenant {tenant.name} --name NAME)"
            )
            return
        _, raw = key_issue(tenant=tenant, name="demo")
        self.stdout.write(f"demo key for tenant {tenant.name} (shown only once):")
        self.stdout.write(f"  {raw}")
