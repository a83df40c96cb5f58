"""The lean handler's URLconf routes the API and the probes without importing the reports API
(Django REST framework and what it pulls in): an API-only process stays smaller."""

from __future__ import annotations

import subprocess
import sys

from django.urls import resolve

from gateway_site.api.views import chat, embeddings, metrics, models, not_found, probes, usage
from tests.conftest import ROOT

PROBE = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "gateway_site.settings"
import django
django.setup()
from django.urls import resolve
match = resolve("/v1/chat/completions", urlconf="gateway_site.api.urls")
heavy = ("rest_framework.serializers", "requests", "gateway_site.console.reports_api")
loaded = sorted(m for m in heavy if m in sys.modules)
print(match.func.__module__, loaded)
"""


def run_probe(code: str, data_dir) -> str:
    """Run ``code`` in a fresh interpreter on embedded defaults; its last line of output."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(data_dir)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def test_the_api_urlconf_does_not_import_the_reports_api(tmp_path):
    assert run_probe(PROBE, tmp_path) == "gateway_site.api.views.chat []"


ROUTES = {
    "/v1/chat/completions": chat.chat_completions,
    "/v1/embeddings": embeddings.embeddings,
    "/v1/models": models.list_models,
    "/v1/models/org/some-model": models.retrieve_model,
    "/v1/usage": usage.key_usage,
    "/v1/nothing/here": not_found.not_found,
    "/live": probes.live,
    "/ready": probes.ready,
    "/health": probes.health,
    "/metrics": metrics.metrics,
}


def test_both_urlconfs_route_the_api_and_the_probes_to_the_same_views():
    for urlconf in ("gateway_site.api.urls", "gateway_site.urls"):
        assert {path: resolve(path, urlconf=urlconf).func for path in ROUTES} == ROUTES
        assert resolve("/v1/models/org/some-model", urlconf=urlconf).kwargs == {"model_id": "org/some-model"}


FROZEN_PROBE = """
import gc, os
os.environ["DJANGO_SETTINGS_MODULE"] = "gateway_site.settings"
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import gateway_site.asgi
loaded = "gateway_site.api.views.chat" in __import__("sys").modules
print(gc.get_freeze_count(), len(gc.get_objects()), loaded)
"""


def test_what_the_application_loads_at_start_is_frozen_out_of_full_collections(tmp_path):
    frozen, tracked, views_loaded = run_probe(FROZEN_PROBE, tmp_path).split()
    # a full collection scans what was made after the start, not the objects loaded before it
    assert int(frozen) > 50_000
    assert int(tracked) < 1_000
    assert views_loaded == "True"
