"""Access checks of the console's own pages (the admin's model pages check theirs in
``quotas.admin.TenantScopedAdmin``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from quotas.tenancy import is_platform

View = Callable[..., HttpResponse]


def platform_only(view: View) -> View:
    """A page about the platform (providers, deployments, routing): 403 for a tenant admin."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not is_platform(request.user):
            raise PermissionDenied("Platform staff only.")
        return view(request, *args, **kwargs)

    return wrapped
