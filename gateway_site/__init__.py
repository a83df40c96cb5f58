"""The Django project and the HTTP edge: settings, URLs, the ASGI entry point, the Celery app
(``celery.py``), the OpenAI-compatible API views (``api/``), the usage sink (``ledger.py``) and
the commands that span apps (``serve``, ``applyconfig``, ``setupdemo``). May import every other
package of ours."""

from gateway_site.celery import app as celery_app

__all__ = ["celery_app"]
