from django.apps import AppConfig

SITE_HEADER = "LLM Gateway"
SITE_TITLE = "LLM Gateway admin"
INDEX_TITLE = "Operator console"


class ConsoleConfig(AppConfig):
    name = "gateway_site.console"
    label = "console"
    verbose_name = "Operator console"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = SITE_HEADER
        admin.site.site_title = SITE_TITLE
        admin.site.index_title = INDEX_TITLE
        # The gateway has no public site: no "View site" link (it led to a 404).
        admin.site.site_url = None
