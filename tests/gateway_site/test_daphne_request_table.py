"""Daphne's table of requests (``Server.connections``) drops a request as soon as its response
is finished and its application returned, not in the sweep Daphne runs once a second on the
event loop; a request whose application raised is still left to that sweep, which answers 500
and logs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_finished_requests_leave_daphnes_table_at_once():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway_site.settings"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.gateway_site.daphne_table_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "get": 0,
        "post": 0,
        "lingering": 1,  # its response is complete, its application has not returned
        "returned": 0,
        "raised": 1,
        "answered_before_sweep": False,
        "answered_by_sweep": True,
        "ok_responses": 3,
    }
