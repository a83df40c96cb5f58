from django.apps import AppConfig


class StoredResponsesConfig(AppConfig):
    name = "stored_responses"
    verbose_name = "Stored responses"
    default_auto_field = "django.db.models.BigAutoField"
