"""Who sees which tenants in the admin and the console.

Platform staff (a superuser, or a user with the ``quotas.all_tenants`` permission, which the
"Platform staff" group carries) see every tenant. Anyone else sees only the tenants they are a
member of (``TenantMembership``): a tenant admin. :func:`visible_tenant_ids` is the one answer
every admin class, console page and report uses; it is computed once per user object (so once
per request) and never on the /v1 path."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from quotas.models import TenantMembership

TENANT_ADMINS_GROUP = "Tenant admins"
PLATFORM_STAFF_GROUP = "Platform staff"
ALL_TENANTS_PERMISSION = "quotas.all_tenants"

_CACHE_ATTR = "_gateway_visible_tenants"


def is_platform(user: Any) -> bool:
    return bool(
        user is not None and user.is_active and (user.is_superuser or user.has_perm(ALL_TENANTS_PERMISSION))
    )


def visible_tenant_ids(user: Any) -> frozenset[int] | None:
    """None: every tenant (platform staff). Otherwise the ids of the tenants ``user`` may see,
    possibly none (an anonymous or inactive user, a staff user with no membership)."""
    if hasattr(user, _CACHE_ATTR):
        cached: frozenset[int] | None = getattr(user, _CACHE_ATTR)
        return cached
    result: frozenset[int] | None
    if user is None or not user.is_authenticated or not user.is_active:
        result = frozenset()
    elif is_platform(user):
        result = None
    else:
        result = frozenset(TenantMembership.objects.filter(user=user).values_list("tenant_id", flat=True))
    if user is not None and user.is_authenticated:
        setattr(user, _CACHE_ATTR, result)
    return result


def tenant_filter(user: Any, *lookups: str) -> Q | None:
    """A filter keeping the rows whose tenant (reached by any of ``lookups``, e.g. ``"tenant"``
    or ``"key__tenant"``) is visible to ``user``; None when every row is."""
    ids = visible_tenant_ids(user)
    if ids is None:
        return None
    condition = Q(pk__in=[])
    for lookup in lookups:
        condition |= Q(**{f"{lookup}__in": sorted(ids)})
    return condition
