"""Periodic work without a Celery broker: ``InProcessBeat`` runs the tasks of the beat schedule
(``CELERY_BEAT_SCHEDULE``) in an ``in-process-beat`` thread of the gateway process, each every
``schedule`` seconds, the first one interval after start, and keeps each one's last run for
``/health``. Every ``serve`` worker runs them; they are idempotent.

A task that raises is logged with its stack trace and keeps its schedule; the others run on.
``/health`` names only the exception's type: it is unauthenticated, and a database's or Redis's
message may name hosts, tables or users."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from django.db import close_old_connections

logger = logging.getLogger(__name__)

Schedule = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class LastRun:
    at: float  # wall clock, seconds since the epoch
    seconds: float
    error: str  # the exception's type; "" when the task succeeded


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # the schedule's key, e.g. "rollup-usage"
    task: str  # the Celery task's name
    every: float  # seconds
    due: float  # time.monotonic() of the next run
    runs: int = 0
    failures: int = 0
    last: LastRun | None = None


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


def _every(entry: Mapping[str, object]) -> float:
    return float(cast(float, entry["schedule"]))


def _scheduled(entry: Mapping[str, object]) -> dict[str, Any]:
    return {"task": entry["task"], "every_seconds": _every(entry)}


def _task_named(name: str) -> Callable[[], object]:
    from gateway_site.celery import app

    return cast(Callable[[], object], app.tasks[name])


class InProcessBeat:
    """``delegated`` maps schedule entries that something else in the process runs (the outbox
    drain, by the ``usage-outbox`` thread) to who runs them: reported, never run here."""

    def __init__(self, schedule: Schedule, *, delegated: Mapping[str, str] | None = None) -> None:
        self._delegated = dict(delegated or {})
        self._schedule = {name: dict(entry) for name, entry in schedule.items()}
        start = time.monotonic()
        self._wall_offset = time.time() - start  # turns a monotonic due time into a date
        self._entries = {
            name: Entry(name=name, task=str(entry["task"]), every=_every(entry), due=start + _every(entry))
            for name, entry in schedule.items()
            if name not in self._delegated
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="in-process-beat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._import_tasks()
        while not self._stop.is_set():
            for entry in self._due(time.monotonic()):
                self._run_entry(entry)
            with self._lock:
                due = min((entry.due for entry in self._entries.values()), default=None)
            self._stop.wait(3600.0 if due is None else max(0.05, due - time.monotonic()))

    @staticmethod
    def _import_tasks() -> None:
        """The installed apps' ``tasks`` modules, found as a Celery worker finds them
        (autodiscovery), which happens when a worker starts: none starts in a gateway process.
        (Not ``import_default_modules()``: it would also run ``django.setup()`` and the system
        checks again, from this thread.)"""
        from gateway_site.celery import app

        try:
            app.autodiscover_tasks(force=True)
        except Exception:  # each task's run then reports it missing; the schedule goes on
            logger.exception("importing the periodic tasks failed")

    def _due(self, now: float) -> list[Entry]:
        with self._lock:
            return [entry for entry in self._entries.values() if now >= entry.due]

    def _run_entry(self, entry: Entry) -> None:
        started, wall = time.monotonic(), time.time()
        error = ""
        try:
            _task_named(entry.task)()
        except Exception as exc:  # a periodic task's failure must not stop the others
            error = type(exc).__name__
            logger.exception("periodic task %s (%s) failed", entry.name, entry.task)
        finally:
            close_old_connections()
        finished = time.monotonic()
        last = LastRun(at=wall, seconds=finished - started, error=error)
        with self._lock:
            self._entries[entry.name] = replace(
                entry,
                due=finished + entry.every,
                runs=entry.runs + 1,
                failures=entry.failures + bool(error),
                last=last,
            )

    def report(self) -> dict[str, Any]:
        """For ``/health``: per schedule entry, its task, interval, last run and next one."""
        with self._lock:
            entries = dict(self._entries)
        tasks: dict[str, Any] = {}
        for name, entry in self._schedule.items():
            if name in self._delegated:
                tasks[name] = {**_scheduled(entry), "runs_in": self._delegated[name]}
            else:
                tasks[name] = _entry_report(entries[name], offset=self._wall_offset)
        return {"runs_in": "process", "tasks": tasks}

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _entry_report(entry: Entry, *, offset: float) -> dict[str, Any]:
    last = entry.last
    return {
        "task": entry.task,
        "every_seconds": entry.every,
        "runs": entry.runs,
        "failures": entry.failures,
        "last_run_at": None if last is None else _iso(last.at),
        "last_status": None if last is None else ("failed" if last.error else "ok"),
        "last_error": (last.error or None) if last is not None else None,
        "last_duration_ms": None if last is None else round(last.seconds * 1000, 1),
        "next_due_at": _iso(entry.due + offset),
    }


def celery_report(schedule: Schedule) -> dict[str, Any]:
    """For ``/health`` with a broker: Celery beat runs the schedule; its runs are Celery's to
    report (``celery -A gateway_site events``, Flower), not this process's."""
    return {
        "runs_in": "celery",
        "tasks": {name: _scheduled(entry) for name, entry in schedule.items()},
    }
