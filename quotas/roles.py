"""The two built-in groups of admin users and their permissions, kept in step after every
``migrate`` (a ``post_migrate`` receiver: permissions exist only once every app has migrated).

* "Tenant admins": manage the keys, access rules and cost quotas of the tenants they are a
  member of, edit those tenants' descriptions, read their alerts and usage records. Nothing of
  providers, models, deployments, prices or rate tiers.
* "Platform staff": every permission of the gateway's apps, and ``quotas.all_tenants``.

Permissions are only ever added here, never removed, so an operator's additions survive."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

TENANT_ADMIN_PERMISSIONS = (
    "quotas.view_tenant",
    "quotas.change_tenant",
    "quotas.view_apikey",
    "quotas.add_apikey",
    "quotas.change_apikey",
    "quotas.delete_apikey",
    "quotas.view_modelaccessrule",
    "quotas.add_modelaccessrule",
    "quotas.change_modelaccessrule",
    "quotas.delete_modelaccessrule",
    "quotas.view_costquota",
    "quotas.add_costquota",
    "quotas.change_costquota",
    "quotas.delete_costquota",
    "quotas.view_quotaalert",
    "accounting.view_usagerecord",
)
PLATFORM_APPS = ("quotas", "providers", "accounting", "stored_responses")


def sync_role_groups(using: str = DEFAULT_DB_ALIAS, apps: Any = global_apps, **_: Any) -> None:
    from quotas.tenancy import PLATFORM_STAFF_GROUP, TENANT_ADMINS_GROUP

    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:
        return
    tenant_admins, _ = group_model.objects.using(using).get_or_create(name=TENANT_ADMINS_GROUP)
    platform, _ = group_model.objects.using(using).get_or_create(name=PLATFORM_STAFF_GROUP)
    wanted = set()
    for dotted in TENANT_ADMIN_PERMISSIONS:
        app_label, codename = dotted.split(".")
        wanted |= set(
            permission_model.objects.using(using)
            .filter(content_type__app_label=app_label, codename=codename)
            .values_list("pk", flat=True)
        )
    tenant_admins.permissions.add(*wanted)
    platform.permissions.add(
        *permission_model.objects.using(using)
        .filter(content_type__app_label__in=PLATFORM_APPS)
        .values_list("pk", flat=True)
    )
