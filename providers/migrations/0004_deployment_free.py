from django.db import migrations, models


def declare_mock_free(apps, schema_editor):
    """The built-in mock is free by declaration; other deployments without a price stay as they
    are, and ``applyconfig`` and the admin name them until they are priced or declared free."""
    Deployment = apps.get_model("providers", "Deployment")
    Deployment.objects.filter(provider__kind="mock", input_per_million=0, output_per_million=0).update(free=True)


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0003_routing_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="free",
            field=models.BooleanField(
                default=False,
                help_text="Served at no cost by declaration: no price needed, every request costs $0.",
            ),
        ),
        migrations.RunPython(declare_mock_free, migrations.RunPython.noop),
    ]
