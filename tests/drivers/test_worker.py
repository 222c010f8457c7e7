"""The DeviceWorker: one owner thread per scanner, offered to asyncio, supervising the device."""

from __future__ import annotations

import asyncio
import threading

import pytest

from drivers.base import CaptureMode
from drivers.emulated import EmulatedConfig, EmulatedFaults, EmulatedLivescan
from drivers.errors import ScannerDisconnected, ScannerTimeout
from drivers.worker import DeviceWorker, ScannerState


def livescan(**faults) -> EmulatedLivescan:
    driver = EmulatedLivescan(EmulatedConfig(image_source="pattern",
                                             faults=EmulatedFaults(**faults)))
    driver.guide(2)
    return driver


@pytest.fixture
async def worker_for():
    made: list[DeviceWorker] = []

    async def make(driver: EmulatedLivescan, **kw) -> DeviceWorker:
        worker = DeviceWorker(driver, reopen_min_s=0.05, reopen_max_s=0.2, **kw)
        worker.start()
        made.append(worker)
        await worker.wait_ready(5)
        return worker

    yield make
    for worker in made:
        await asyncio.to_thread(worker.stop)


async def test_driver_is_touched_only_by_its_owner_thread(worker_for) -> None:
    worker = await worker_for(livescan())
    names = {await worker.call(lambda _d: threading.current_thread().name) for _ in range(3)}
    assert names == {"scanner:emulated-livescan"}


async def test_preview_stops_when_the_consumer_stops(worker_for) -> None:
    worker = await worker_for(livescan())
    seen = []
    async for frame in worker.preview(CaptureMode.FLAT_FOUR, fps=200):
        seen.append(frame.sequence)
        if len(seen) == 6:
            break
    assert seen == sorted(seen) and len(set(seen)) == 6
    frame = await asyncio.wait_for(worker.capture(CaptureMode.FLAT_FOUR), 10)  # thread is free
    assert frame.image.shape == (1500, 1600)


async def test_cancelled_caller_does_not_wedge_the_thread(worker_for) -> None:
    worker = await worker_for(livescan())
    task = asyncio.create_task(worker.call_cancellable(lambda _d, cancel: cancel.wait(10)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(worker.call(lambda d: d.finger_present()), 5) is True


async def test_unplug_reports_disconnected_and_reopens_on_replug(worker_for) -> None:
    states: list[ScannerState] = []
    worker = await worker_for(livescan(unplug_after_captures=0), on_state=states.append)
    with pytest.raises(ScannerDisconnected):
        await worker.capture(CaptureMode.ROLLED)
    assert worker.state is ScannerState.DISCONNECTED
    await worker.call(lambda d: d.replug())
    await worker.wait_ready(5)
    assert ScannerState.DISCONNECTED in states and states[-1] is ScannerState.READY
    assert worker.counters.disconnects == 1 and worker.counters.reopens >= 1


async def test_wedged_device_is_reset_after_repeated_timeouts(worker_for) -> None:
    worker = await worker_for(livescan(wedged_captures=100), wedged_after_timeouts=3)
    for _ in range(3):
        with pytest.raises(ScannerTimeout):
            await worker.capture(CaptureMode.ROLLED)
    assert worker.counters.resets == 1
    frame = await worker.capture(CaptureMode.ROLLED)  # the reset unwedged it
    assert frame.image.shape == (750, 800)


async def test_a_driver_bug_does_not_kill_the_owner_thread(worker_for) -> None:
    worker = await worker_for(livescan())
    with pytest.raises(ZeroDivisionError):
        await worker.call(lambda _d: 1 / 0)
    assert await worker.call(lambda d: d.identity().model) == "Emulated livescan"


async def test_capture_preempts_a_running_preview(worker_for) -> None:
    worker = await worker_for(livescan())
    frames = 0

    async def watch() -> None:
        nonlocal frames
        async for _ in worker.preview(CaptureMode.ROLLED, fps=30):
            frames += 1

    viewer = asyncio.create_task(watch())
    while frames < 3:
        await asyncio.sleep(0.01)
    frame = await asyncio.wait_for(worker.capture(CaptureMode.ROLLED), 10)
    assert frame.image.shape == (750, 800)
    await asyncio.wait_for(viewer, 5)  # the preview ended instead of blocking the capture
