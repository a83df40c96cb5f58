"""Tenant admins: a user's membership of tenants, the permission that makes platform staff,
and the two groups (their permissions are filled in after every migrate: quotas.roles).
Staff users who are not superusers saw every tenant before: they are given the
``all_tenants`` permission here, and nothing else, so that upgrading changes nothing for them."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PLATFORM_STAFF_GROUP = "Platform staff"
TENANT_ADMINS_GROUP = "Tenant admins"


def create_groups(apps, schema_editor):
    db = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Group.objects.using(db).get_or_create(name=TENANT_ADMINS_GROUP)
    Group.objects.using(db).get_or_create(name=PLATFORM_STAFF_GROUP)
    existing = list(User.objects.using(db).filter(is_staff=True, is_superuser=False))
    if not existing:
        return
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label="quotas", model="tenantmembership")
    permission, _ = Permission.objects.using(db).get_or_create(
        content_type=content_type,
        codename="all_tenants",
        defaults={"name": "See and manage every tenant (platform staff)"},
    )
    permission.user_set.add(*existing)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("quotas", "0004_trusted_issuers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TenantMembership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="admins", to="quotas.tenant"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tenant_memberships",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "tenant admin",
                "ordering": ["tenant__name", "user__username"],
                "permissions": [("all_tenants", "See and manage every tenant (platform staff)")],
                "constraints": [
                    models.UniqueConstraint(fields=("user", "tenant"), name="uniq_tenant_membership")
                ],
            },
        ),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
