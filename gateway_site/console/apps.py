from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "gateway_site.console"
    label = "console"
    verbose_name = "Operator console"
