"""The ``/v1`` edge: the OpenAI-compatible endpoints (``views``), each reading as the request
path, one module a stage, in order:

``endpoint`` (the wrapper: load shedding, request id, errors rendered) -> ``authenticate`` (key,
model) -> ``parse`` (body, bounds) -> ``estimate`` (tokens, maximum cost) -> ``admit`` (one
limiter round trip) -> ``cache`` (response cache) -> ``route`` (deployments, upstream call
through ``routing`` and ``providers``) -> ``stream`` (SSE relay) -> ``settle`` (one settlement
and one usage record, whatever happened; ``outcome`` is what happened).

Reads no database itself (import-linter checks it)."""
