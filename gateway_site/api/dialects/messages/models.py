"""The model list in the Messages API's shape (``GET /v1/models`` from a client that sends
``anthropic-version``): ``{"type": "model", "id", "display_name", "created_at"}`` objects, a
page at a time (``limit``, ``after_id``, ``before_id``) with ``has_more``, ``first_id`` and
``last_id``. No Django here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from providers.types import ModelRoute

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def model_object(route: ModelRoute) -> dict[str, object]:
    created = datetime.fromtimestamp(route.created, tz=UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": route.name, "display_name": route.name, "created_at": created}


def page_limit(value: str | None) -> int | None:
    """``limit`` as given (1 to ``MAX_LIMIT``; absent: ``DEFAULT_LIMIT``); None when invalid."""
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        return None
    return int(value)


def model_page(routes: Sequence[ModelRoute], query: Mapping[str, str], *, limit: int) -> dict[str, object]:
    """One page of ``routes`` (in the order given): after ``after_id``, or the last ``limit``
    before ``before_id``."""
    ids = [route.name for route in routes]
    before, after = query.get("before_id"), query.get("after_id")
    if before is not None:
        end = ids.index(before) if before in ids else len(ids)
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start = ids.index(after) + 1 if after in ids else 0
        end = min(len(ids), start + limit)
        has_more = end < len(ids)
    data = [model_object(route) for route in routes[start:end]]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
