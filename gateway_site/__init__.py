"""The Django project (settings, URLs, the ASGI entry point, the Celery app, the environment
parsing) and its four parts, layered (import-linter checks it):

* ``api``: the ``/v1`` edge, one module per stage of a request; ``http_edge``: the HTTP/1.1
  connection layer under Daphne; ``console``: the operator console (admin, usage pages, the
  reports API, ``applyconfig``). These three never import each other.
* ``runtime``: what a gateway process owns (configuration snapshot, clients, limiter, usage
  sink, background threads, admission gate).
* ``observability``: metrics, traces, logs, request ids and the PII redactor.

May import every other package of ours."""

from gateway_site.celery import app as celery_app

__all__ = ["celery_app"]
