from django.contrib import admin
from django.urls import path

from gateway_site.api import urls as api_urls
from gateway_site.console import live_tail, reports_api, routing_overview, usage_pages

urlpatterns = [
    *api_urls.urlpatterns,
    path("api/usage/summary", reports_api.SummaryView.as_view()),
    path("api/usage/totals", reports_api.TotalsView.as_view()),
    path("api/usage/timeseries", reports_api.TimeSeriesView.as_view()),
    path(
        "admin/usage/<int:tenant_id>/", admin.site.admin_view(usage_pages.tenant_usage), name="tenant-usage"
    ),
    path("admin/routing/", admin.site.admin_view(routing_overview.overview_page), name="routing-overview"),
    path(
        "admin/routing/stats.json",
        admin.site.admin_view(routing_overview.overview_json),
        name="routing-overview-json",
    ),
    path("admin/live/", admin.site.admin_view(live_tail.live_tail_page), name="live-tail"),
    path("admin/", admin.site.urls),
]
