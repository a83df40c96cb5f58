"""What one gateway process owns and wires together (``process.get_runtime()``): the
configuration snapshot and its watcher (``snapshot``), the upstream HTTP client and router, the
limiter and the response cache (one per event loop, ``per_loop``), the usage sink
(``usage_sink``) and its background threads (``outbox_drainer``, ``periodic``), the admission
gate (``overload``) and the readiness checks (``health``). Imports ``observability`` and the
domain packages, never the edge."""
