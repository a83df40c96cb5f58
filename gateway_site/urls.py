from django.contrib import admin
from django.urls import path

from gateway_site.api import urls as api_urls
from gateway_site.console import (
    live_tail,
    oidc,
    reports_api,
    request_log,
    routing_overview,
    spend_dashboard,
    usage_pages,
)
from gateway_site.console.access import platform_only

urlpatterns = [
    *api_urls.urlpatterns,
    path("api/usage/summary", reports_api.SummaryView.as_view()),
    path("api/usage/totals", reports_api.TotalsView.as_view()),
    path("api/usage/timeseries", reports_api.TimeSeriesView.as_view()),
    path(
        "admin/usage/<int:tenant_id>/", admin.site.admin_view(usage_pages.tenant_usage), name="tenant-usage"
    ),
    path(
        "admin/spend/",
        admin.site.admin_view(platform_only(spend_dashboard.spend_dashboard)),
        name="spend-dashboard",
    ),
    path("admin/requests/", admin.site.admin_view(request_log.request_log), name="request-log"),
    path(
        "admin/requests/<int:record_id>/",
        admin.site.admin_view(request_log.request_detail),
        name="request-detail",
    ),
    path(
        "admin/routing/",
        admin.site.admin_view(platform_only(routing_overview.overview_page)),
        name="routing-overview",
    ),
    path(
        "admin/routing/stats.json",
        admin.site.admin_view(platform_only(routing_overview.overview_json)),
        name="routing-overview-json",
    ),
    path("admin/live/", admin.site.admin_view(platform_only(live_tail.live_tail_page)), name="live-tail"),
    # Before the admin's own: the login page with single sign-on (docs/security.md).
    path("admin/login/", oidc.admin_login, name="admin-login"),
    path("oidc/authenticate/", oidc.sign_in, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.callback, name="oidc_authentication_callback"),
    path("admin/", admin.site.urls),
]
