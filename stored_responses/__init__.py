"""Stored responses of the Responses API (``/v1/responses`` with ``store: true``): each response
and the input items it was given, owned by a tenant (and the key that made it), sealed at rest
with the Fernet keys of the provider secrets, and purged after the retention period.

``services`` is the only way in (the ``/v1`` edge calls it through ``sync_to_async``); ``tasks``
holds the periodic purge. May import ``quotas`` and ``providers.secrets``, nothing else of ours
(import-linter checks it)."""
