"""``applyconfig`` for rate tiers (with per-model lines) and tenants (with tier and cost quotas):
the example of the quotas issue works as written, applies idempotently, and the file's lists
are the whole lists."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from quotas.models import CostQuota, RateTier, Tenant, TierModelLimit
from quotas.revision import bump_revision, current_revision

pytestmark = pytest.mark.django_db

ISSUE_EXAMPLE = """
tiers:
  - name: standard
    algorithm: sliding_window     # fixed_window | sliding_window | token_bucket | leaky_bucket
    requests_per_minute: 600
    tokens_per_minute: 200000
    requests_per_day: 100000
    max_parallel: 20
    models:                       # optional per-model lines
      - pattern: "gpt-4o*"
        requests_per_minute: 100
tenants:
  - name: acme
    tier: standard
    quotas:
      - period: month             # day | week | month | lifetime
        limit_usd: "100.00"
        hard: true
        alert_at: 0.8
        alert_webhook: http://127.0.0.1:9009/alerts
"""


def apply(tmp_path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    out = StringIO()
    call_command("applyconfig", str(path), stdout=out)
    return out.getvalue().splitlines()


def test_the_issue_example_works_as_written(tmp_path):
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    lines = apply(tmp_path, ISSUE_EXAMPLE)

    assert lines == [
        "created tier standard",
        "created tier standard model line gpt-4o*",
        "created tenant acme",
        "created tenant acme quota month hard",
    ]
    tier = RateTier.objects.get()
    assert (
        tier.algorithm,
        tier.requests_per_minute,
        tier.tokens_per_minute,
        tier.requests_per_day,
        tier.tokens_per_day,
        tier.max_parallel,
    ) == ("sliding_window", 600, 200_000, 100_000, None, 20)
    line = TierModelLimit.objects.get()
    assert (line.tier, line.position, line.pattern, line.requests_per_minute, line.max_parallel) == (
        tier,
        0,
        "gpt-4o*",
        100,
        None,
    )
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.tier, tenant.is_active) == ("acme", tier, True)
    quota = CostQuota.objects.get()
    assert (quota.tenant, quota.key, quota.period, quota.limit_usd, quota.hard, quota.alert_at) == (
        tenant,
        None,
        "month",
        Decimal("100.00"),
        True,
        Decimal("0.8"),
    )
    assert quota.alert_webhook == "http://127.0.0.1:9009/alerts"
    assert current_revision() == before + 1

    assert apply(tmp_path, ISSUE_EXAMPLE) == ["no changes"]
    assert current_revision() == before + 1


def test_the_files_lists_are_the_whole_lists(tmp_path):
    apply(tmp_path, ISSUE_EXAMPLE)
    quota = CostQuota.objects.get()
    changed = (
        ISSUE_EXAMPLE.replace(
            '      - pattern: "gpt-4o*"\n        requests_per_minute: 100\n', '      - pattern: "o1*"\n'
        )
        .replace('limit_usd: "100.00"', 'limit_usd: "250"')
        .replace(
            "    quotas:\n", "    quotas:\n      - period: day\n        limit_usd: 5\n        hard: false\n"
        )
    )

    lines = apply(tmp_path, changed)

    assert lines == [
        "created tier standard model line o1*",
        "created tenant acme quota day soft",
        "updated tenant acme quota month hard (limit_usd)",
        "deleted tier standard model line gpt-4o*",
    ]
    assert list(TierModelLimit.objects.values_list("pattern", flat=True)) == ["o1*"]
    assert CostQuota.objects.get(pk=quota.pk).limit_usd == Decimal("250")
    assert sorted(CostQuota.objects.values_list("period", "hard")) == [("day", False), ("month", True)]

    assert apply(tmp_path, "tenants:\n  - name: acme\n    tier: standard\n") == [
        "deleted tenant acme quota month hard",
        "deleted tenant acme quota day soft",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants: [{name: acme, tier: gold}]\n", "tenant acme: unknown tier 'gold'"),
        (
            "tenants: [{name: acme, quotas: [{period: day, limit_usd: 1}, {period: day, limit_usd: 2}]}]\n",
            "tenant acme: quotas: 'day hard' is listed more than once",
        ),
        (
            "tiers: [{name: t, models: [{pattern: a}, {pattern: a}]}]\n",
            "tier t: models: 'a' is listed more than once",
        ),
        (
            "tenants: [{name: acme, quotas: [{period: day, limit_usd: 1, alert_at: 1.5}]}]\n",
            "tenants.0.quotas.0.alert_at: Input should be less than or equal to 1",
        ),
        (
            "tenants: [{name: acme, quotas: [{period: fortnight, limit_usd: 1}]}]\n",
            "tenants.0.quotas.0.period: Input should be 'day', 'week', 'month' or 'lifetime'",
        ),
        (
            "tenants: [{name: acme, quotas: [{limit_usd: 1, alert_webhook: 'ftp://x'}]}]\n",
            "tenants.0.quotas.0.alert_webhook: String should match pattern",
        ),
        ("tiers: [{name: t, models: [{pattern: a, rpm: 3}]}]\n", "tiers.0.models.0.rpm: Extra inputs"),
    ],
)
def test_invalid_limits_are_refused_and_nothing_changes(tmp_path, text, message):
    with pytest.raises(CommandError) as caught:
        apply(tmp_path, text)

    assert message in str(caught.value)
    assert not Tenant.objects.exists() and not RateTier.objects.exists()
