"""The revision counter never repeats a revision a running process may hold."""

from __future__ import annotations

import pytest

from quotas.models import ConfigRevision
from quotas.revision import bump_revision, current_revision


@pytest.mark.django_db
def test_a_counter_row_created_again_starts_past_every_earlier_revision():
    bump_revision()
    bump_revision()
    held = current_revision()  # what a gateway's snapshot would hold
    ConfigRevision.objects.all().delete()  # emptied tables, or a backup restored
    assert current_revision() == 0
    bump_revision()
    bump_revision()
    assert current_revision() > held + 1
    bump_revision()
    assert current_revision() == ConfigRevision.objects.get(pk=1).revision
