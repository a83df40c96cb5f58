"""One stored response: who owns it, when it was made, and its content sealed (Fernet)."""

from __future__ import annotations

from django.db import models

from quotas.models import ApiKey, Tenant


class StoredResponse(models.Model):
    """``response_sealed`` is the response object's JSON; ``items_sealed`` the JSON array of the
    input items the response was made from (a previous response's items and output first), which
    is what a later ``previous_response_id`` continues. Neither is readable without the keys."""

    id = models.CharField(max_length=64, primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(db_index=True)
    response_sealed = models.TextField()
    items_sealed = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return self.id
