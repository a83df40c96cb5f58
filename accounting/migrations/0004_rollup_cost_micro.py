"""Rollups keep the cost in micro-dollars with each record rounded up, so that quota spend is
rebuilt from them (raw records are purged). Existing rows are filled in: an hour whose raw
records are still there gets their exact sum; a row without them (purged) gets its summed cost
rounded up, which may be lower by under one micro-dollar per record; days are summed from hours.
A key's quota reads its hours by key: an index like the tenant's."""

import datetime as dt
from decimal import Decimal

from django.db import migrations, models
from django.db.models import F, Sum, Value
from django.db.models.functions import Ceil, TruncHour


def fill_cost_micro(apps, schema_editor):
    rollups = apps.get_model("accounting", "UsageRollup")
    records = apps.get_model("accounting", "UsageRecord")
    state = apps.get_model("accounting", "RollupState").objects.filter(pk=1).first()
    rollups.objects.update(cost_micro=Ceil(F("cost_usd") * Value(Decimal(1_000_000))))
    if state is None or state.rolled_through is None:
        return
    groups = (
        records.objects.filter(ingested_at__lte=state.rolled_through)
        .order_by()
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "tenant_id", "key_id", "model", "provider")
        .annotate(micro=Sum(Ceil(F("cost_usd") * Value(Decimal(1_000_000)))))
    )
    for group in groups.iterator(chunk_size=2000):
        rollups.objects.filter(
            granularity="hour",
            bucket_start=group["hour"],
            tenant_id=group["tenant_id"] or 0,
            key_id=group["key_id"] or 0,
            model=group["model"],
            provider=group["provider"],
        ).update(cost_micro=group["micro"] or 0)
    days = rollups.objects.filter(granularity="day")
    for day in days.iterator(chunk_size=2000):
        hours = rollups.objects.filter(
            granularity="hour",
            bucket_start__gte=day.bucket_start,
            bucket_start__lt=day.bucket_start + dt.timedelta(days=1),
            tenant_id=day.tenant_id,
            key_id=day.key_id,
            model=day.model,
            provider=day.provider,
        )
        total = hours.aggregate(micro=Sum("cost_micro"))["micro"]
        if total is not None:
            rollups.objects.filter(pk=day.pk).update(cost_micro=total)


class Migration(migrations.Migration):
    dependencies = [
        ("accounting", "0003_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerollup",
            name="cost_micro",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text="The cost in micro-dollars, each record rounded up (the cost quota counters' rule).",
            ),
        ),
        migrations.RunPython(fill_cost_micro, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="usagerollup",
            index=models.Index(fields=["key_id", "granularity", "bucket_start"], name="rollup_key_time"),
        ),
    ]
