from django.contrib import admin
from django.urls import path, re_path

from gateway_site import exposition, probes, routing_overview, usage_api, usage_pages
from gateway_site.api import embeddings, self_usage, views

urlpatterns = [
    path("v1/chat/completions", views.chat_completions),
    path("v1/embeddings", embeddings.embeddings),
    path("v1/models", views.list_models),
    path("v1/models/<path:model_id>", views.retrieve_model),
    path("v1/usage", self_usage.key_usage),
    re_path(r"^v1/", views.not_found),
    path("live", probes.live),
    path("ready", probes.ready),
    path("health", probes.health),
    path("metrics", exposition.metrics),
    path("api/usage/summary", usage_api.SummaryView.as_view()),
    path("api/usage/totals", usage_api.TotalsView.as_view()),
    path("api/usage/timeseries", usage_api.TimeSeriesView.as_view()),
    path(
        "admin/usage/<int:tenant_id>/", admin.site.admin_view(usage_pages.tenant_usage), name="tenant-usage"
    ),
    path("admin/routing/", admin.site.admin_view(routing_overview.overview_page), name="routing-overview"),
    path(
        "admin/routing/stats.json",
        admin.site.admin_view(routing_overview.overview_json),
        name="routing-overview-json",
    ),
    path("admin/", admin.site.urls),
]
