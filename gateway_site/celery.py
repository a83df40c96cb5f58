"""The Celery app: ``celery -A gateway_site worker -B`` runs a worker with beat on one machine
(``celery -A gateway_site worker`` and one ``celery -A gateway_site beat`` for many).

Configuration comes from Django's settings (``CELERY_*``, see settings.py and docs/operations.md,
"Periodic tasks"); tasks live in each app's ``tasks.py``. Without ``CELERY_BROKER_URL`` tasks run eagerly
in the calling process and nothing needs a broker."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

app = Celery("gateway_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
