from django.apps import AppConfig
from django.db.models.signals import post_migrate


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Tenants, keys and quotas"

    def ready(self) -> None:
        from quotas.roles import sync_role_groups

        # Every app's post_migrate: the permissions of the apps after this one exist only then.
        post_migrate.connect(sync_role_groups, dispatch_uid="quotas.sync_role_groups")
