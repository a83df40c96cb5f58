"""The reports API under ``/api/usage/`` (Django REST framework): authenticate (a gateway key,
or a staff user by session or DRF token), then decide the tenant (a key: its own tenant, always;
platform staff: ``?tenant=<name>`` or every tenant; a tenant admin: the same among their
tenants only), then call ``accounting.reports``.

Endpoints (dates ``YYYY-MM-DD``, UTC, ``end`` inclusive; ``?format=csv`` for CSV):

* ``summary?start&end``: requests, tokens and cost of the range, including the records not yet
  rolled up.
* ``totals?start&end[&group_by=tenant|model|key|provider|subject]`` (``tenant``: staff only;
  ``subject``: the bearer tokens' subjects, read from the raw records)
* ``timeseries?start&end&granularity=day|hour[&group_by=...]``"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, TokenAuthentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounting.reports import GROUP_FIELDS, Row, Scope, usage_report, usage_summary
from gateway_site.runtime.process import get_runtime
from quotas.authentication.keys import key_from_headers
from quotas.authentication.registry import KeyContext
from quotas.errors import AuthenticationError
from quotas.models import Tenant
from quotas.tenancy import visible_tenant_ids

MAX_DAYS = 366


class GatewayKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <gateway key>`` or ``X-API-Key``: the request acts for the key's
    tenant (``request.auth`` is its ``KeyContext``)."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, KeyContext] | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") and "x-api-key" not in request.headers:
            return None
        presented = key_from_headers(header or None, request.headers.get("x-api-key"))
        try:
            return AnonymousUser(), get_runtime().watcher.current().keys.authenticate(presented)
        except AuthenticationError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class GatewayKeyOrStaff(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, KeyContext):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        rows = data.get("rows", [data]) if isinstance(data, dict) else []
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue().encode()


def _date(request: Request, name: str) -> dt.date:
    value = request.query_params.get(name, "")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise exceptions.ValidationError({name: "a date as YYYY-MM-DD is required"}) from None


def _choice(request: Request, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
    value = request.query_params.get(name)
    if value is None and not required:
        return None
    if value not in choices:
        raise exceptions.ValidationError({name: f"one of {', '.join(choices)}"})
    return value


def _tenants(request: Request) -> tuple[int | None, frozenset[int] | None]:
    """A key always reads its own tenant (a ``tenant`` parameter naming another is refused);
    platform staff read ``?tenant=`` or every tenant; a tenant admin ``?tenant=`` among theirs
    (another is "no tenant named", as a missing one) or all of theirs."""
    asked = request.query_params.get("tenant")
    if isinstance(request.auth, KeyContext):
        if asked is not None and asked != request.auth.tenant_name:
            raise exceptions.PermissionDenied("A gateway key can only read its own tenant's usage.")
        return request.auth.tenant_id, None
    visible = visible_tenant_ids(request.user)
    if asked is None:
        return None, visible
    tenant = Tenant.objects.filter(name=asked).values_list("pk", flat=True).first()
    if tenant is None or (visible is not None and tenant not in visible):
        raise exceptions.NotFound(f"No tenant named {asked!r}.")
    return tenant, None


def _group_by(request: Request) -> str | None:
    """``group_by``; ``tenant`` is for staff only (a gateway key sees one tenant anyway, and
    must not learn the others' names)."""
    group_by = _choice(request, "group_by", tuple(GROUP_FIELDS))
    if group_by == "tenant" and isinstance(request.auth, KeyContext):
        raise exceptions.PermissionDenied("Only staff can group usage by tenant.")
    return group_by


def scope_from(request: Request) -> Scope:
    start, end = _date(request, "start"), _date(request, "end")
    if end < start or (end - start).days >= MAX_DAYS:
        raise exceptions.ValidationError({"end": f"on or after start, at most {MAX_DAYS} days later"})
    tenant_id, tenant_ids = _tenants(request)
    return Scope(tenant_id=tenant_id, start=start, end=end, tenant_ids=tenant_ids)


class UsageView(APIView):
    authentication_classes = [GatewayKeyAuthentication, SessionAuthentication, TokenAuthentication]
    permission_classes = [GatewayKeyOrStaff]
    renderer_classes = [JSONRenderer, CsvRenderer]

    def _rows(self, scope: Scope, rows: list[Row], **meta: object) -> Response:
        period = {"start": scope.start.isoformat(), "end": scope.end.isoformat()}
        return Response({**period, **meta, "rows": [row.as_dict() for row in rows]})


class SummaryView(UsageView):
    def get(self, request: Request) -> Response:
        scope = scope_from(request)
        row = usage_summary(scope).as_dict()
        return Response({"start": scope.start.isoformat(), "end": scope.end.isoformat(), **row})


class TotalsView(UsageView):
    def get(self, request: Request) -> Response:
        scope = scope_from(request)
        group_by = _group_by(request)
        rows = usage_report(scope, group_by=group_by)  # type: ignore[arg-type]
        return self._rows(scope, rows)


class TimeSeriesView(UsageView):
    def get(self, request: Request) -> Response:
        scope = scope_from(request)
        group_by = _group_by(request)
        granularity = _choice(request, "granularity", ("day", "hour"), required=True)
        rows = usage_report(scope, group_by=group_by, granularity=granularity)  # type: ignore[arg-type]
        return self._rows(scope, rows, granularity=granularity)
