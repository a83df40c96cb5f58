"""The lean handler's URLconf routes the API and the probes without importing the reports API
(Django REST framework and what it pulls in): an API-only process stays smaller."""

from __future__ import annotations

import subprocess
import sys

from django.urls import resolve

from gateway_site.api import embeddings, views
from tests.conftest import ROOT

PROBE = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "gateway_site.settings"
import django
django.setup()
from django.urls import resolve
match = resolve("/v1/chat/completions", urlconf="gateway_site.api_urls")
heavy = ("rest_framework.serializers", "requests", "gateway_site.usage_api")
loaded = sorted(m for m in heavy if m in sys.modules)
print(match.func.__module__, loaded)
"""


def test_the_api_urlconf_does_not_import_the_reports_api(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "gateway_site.api.views []", result.stdout


def test_both_urlconfs_route_the_api_to_the_same_views():
    for urlconf in ("gateway_site.api_urls", "gateway_site.urls"):
        assert resolve("/v1/chat/completions", urlconf=urlconf).func is views.chat_completions
        assert resolve("/v1/embeddings", urlconf=urlconf).func is embeddings.embeddings
        assert resolve("/v1/nothing/here", urlconf=urlconf).func is views.not_found
