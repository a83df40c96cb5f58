"""The snapshot watcher's read-your-writes check: concurrent requests the snapshot cannot serve
share revision checks (the first caller's, then one for all who asked while it ran), and a check
that finds nothing new keeps the snapshot."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gateway_site.runtime.snapshot import ConfigSnapshot, SnapshotWatcher
from quotas.errors import UnknownKey
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def watcher(make_key):
    """A watcher over one key whose thread checks once, at start, and then not for 30 s."""
    make_key("acme", name="first")
    watching = SnapshotWatcher(poll_seconds=30, redis_url="")
    yield watching
    watching.stop(join_seconds=5)


async def _catch_up_together(
    watcher: SnapshotWatcher, seen: ConfigSnapshot, callers: int
) -> list[ConfigSnapshot]:
    return list(await asyncio.gather(*(watcher.catch_up(seen) for _ in range(callers))))


def test_fifty_concurrent_catch_ups_share_two_checks_that_find_a_new_key(watcher, make_key):
    before = watcher.current()
    assert watcher.revision_checks == 1
    late = make_key("acme", name="late")
    with pytest.raises(UnknownKey):
        before.keys.authenticate(late.raw)

    seen = asyncio.run(_catch_up_together(watcher, before, 50))

    assert watcher.revision_checks == 3  # the first caller's; one for the 49 who asked during it
    assert {id(snapshot) for snapshot in seen} == {id(seen[0])}
    assert seen[0].revision == before.revision + 1
    assert seen[0].keys.authenticate(late.raw).key_id == late.key_id

    unchanged = asyncio.run(watcher.catch_up(seen[0]))
    assert unchanged is seen[0]  # nothing new: the same snapshot, so the refusal stands
    assert watcher.revision_checks == 4

    assert asyncio.run(watcher.catch_up(before)) is seen[0]  # already newer: no check
    assert watcher.revision_checks == 4


def test_checks_one_after_another_are_spaced_so_a_flood_is_bounded(watcher):
    snapshot = watcher.current()

    async def one_after_another(times: int) -> float:
        started = time.monotonic()
        for _ in range(times):
            assert await watcher.catch_up(snapshot) is snapshot  # nothing changed
        return time.monotonic() - started

    elapsed = asyncio.run(one_after_another(20))

    assert watcher.revision_checks == 1 + 20  # each caller asked after the previous check
    assert elapsed >= 19 * SnapshotWatcher.CHECK_SPACING_SECONDS


def test_a_request_waits_at_most_a_second_for_a_check_that_does_not_finish(watcher):
    snapshot = watcher.current()
    # A check stuck on the database: here, the watcher's own check lock held elsewhere until
    # the test frees it.
    stuck, freed = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(watcher, stuck, freed), daemon=True)
    holder.start()
    assert stuck.wait(5)

    started = time.monotonic()
    try:
        assert asyncio.run(watcher.catch_up(snapshot)) is snapshot
        waited = time.monotonic() - started
    finally:
        freed.set()

    assert SnapshotWatcher.CHECK_WAIT_SECONDS <= waited < SnapshotWatcher.CHECK_WAIT_SECONDS + 0.5
    holder.join(10)
    wait_for(lambda: watcher.revision_checks == 2, timeout=5)  # the stuck check runs once free


def _hold(watcher: SnapshotWatcher, holding: threading.Event, freed: threading.Event) -> None:
    with watcher._check_lock:  # the test stands in for a database that hangs
        holding.set()
        freed.wait(10)
