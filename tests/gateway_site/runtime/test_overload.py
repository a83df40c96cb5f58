"""The loop monitor and the admission gate on a real event loop, stalled by blocking callbacks."""

from __future__ import annotations

import asyncio
import time

from gateway_site.runtime.overload import LoadGate, LoopMonitor


async def test_the_monitor_measures_how_late_the_loop_runs():
    monitor = LoopMonitor(interval=0.01)
    monitor.start()
    await asyncio.sleep(0.05)
    assert monitor.lag() < 0.05

    time.sleep(0.2)  # the loop is blocked: the monitor's timer is overdue
    assert 0.15 <= monitor.lag() < 0.5
    assert monitor.stalled() >= 0.15
    await asyncio.sleep(0.05)
    stalled = monitor.stalled()
    assert 0.15 <= stalled < 0.5  # the stall, counted once when the monitor woke
    await asyncio.sleep(0.05)
    assert monitor.stalled() - stalled < 0.05
    await monitor.aclose()


async def test_the_gate_sheds_past_its_in_flight_bound_and_admits_again_after_a_leave():
    gate = LoadGate(max_in_flight=2, max_lag=1.0, monitor=LoopMonitor(interval=0.01))
    assert [gate.enter(), gate.enter(), gate.enter()] == [None, None, "in_flight"]
    assert gate.in_flight == 2
    gate.leave()
    assert (gate.enter(), gate.in_flight) == (None, 2)
    await gate.monitor.aclose()


async def test_the_gate_sheds_while_the_loop_runs_late_and_recovers():
    gate = LoadGate(max_in_flight=100, max_lag=0.05, monitor=LoopMonitor(interval=0.01))
    assert gate.enter() is None
    await asyncio.sleep(0.03)

    time.sleep(0.2)
    assert (gate.enter(), gate.in_flight) == ("lag", 1)  # refused: nothing counted

    await asyncio.sleep(0.05)  # the loop has caught up
    assert (gate.enter(), gate.in_flight) == (None, 2)
    await gate.monitor.aclose()
