"""The request log: the indexes its filters use (each with created_at, the order it lists in,
and latency), the attempts a request made and whether it fell back, the latencies kept in the
rollups (the dashboard's mean latency), and the encrypted content of requests of tenants that
log content (RequestContent, its own table and retention).

On PostgreSQL the usage records are partitioned by month (0005): CREATE INDEX on the partitioned
table creates the index on every partition, present and future (it holds the table locked while
it builds: usage waits in the outbox or the writer's spool meanwhile). The new columns have a
database default, so a gateway of the previous version still inserts during a rolling upgrade.
SQLite takes the same operations on its plain table (the cache-hit index is partial on both)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounting', '0006_usage_subject'),
        ('quotas', '0003_tenant_log_content'),
    ]

    operations = [
        migrations.CreateModel(
            name='RequestContent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('request_id', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(db_index=True)),
                ('tenant_id', models.BigIntegerField()),
                ('prompt', models.TextField(help_text="Encrypted: the redacted prompt messages' texts (a JSON list).")),
                ('reply', models.TextField(help_text='Encrypted: the redacted reply text.')),
            ],
            options={
                'verbose_name': 'request content',
                'verbose_name_plural': 'request contents',
            },
        ),
        migrations.AddField(
            model_name='usagerecord',
            name='attempts',
            field=models.PositiveSmallIntegerField(db_default=1, help_text='Upstream calls made: retries and fallbacks included (0: none, e.g. a cache hit).'),
        ),
        migrations.AddField(
            model_name='usagerecord',
            name='fell_back',
            field=models.BooleanField(db_default=False, help_text='Answered by a fallback deployment.'),
        ),
        migrations.AddField(
            model_name='usagerollup',
            name='latency_ms_sum',
            field=models.FloatField(db_default=0.0, help_text="The records' latencies added up (mean: divided by requests); 0 in rollups made before it was kept."),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['key', 'created_at'], name='usage_key_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['model', 'created_at'], name='usage_model_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['provider', 'created_at'], name='usage_provider_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['deployment_id', 'created_at'], name='usage_deployment_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['status', 'created_at'], name='usage_status_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['endpoint', 'created_at'], name='usage_endpoint_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(condition=models.Q(('cache_hit', True)), fields=['created_at'], name='usage_cache_hit_time'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['client_request_id'], name='usage_client_request'),
        ),
        migrations.AddIndex(
            model_name='usagerecord',
            index=models.Index(fields=['latency_ms'], name='usage_latency'),
        ),
    ]
