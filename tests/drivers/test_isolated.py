"""A driver served from a child process (drivers.isolated) behaves as the driver itself does."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.base import CaptureMode
from drivers.emulated import EmulatedConfig, EmulatedFaults, EmulatedLivescan
from drivers.errors import ScannerDisconnected, ScannerTimeout
from drivers.isolated import IsolatedDriver
from drivers.worker import DeviceWorker, ScannerState


def _config(**faults: object) -> EmulatedConfig:
    return EmulatedConfig(image_source="pattern", process=True, faults=EmulatedFaults(**faults))


@pytest.fixture
def isolated() -> Iterator[list[IsolatedDriver]]:
    made: list[IsolatedDriver] = []
    yield made
    for driver in made:
        driver.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_frames_are_those_of_the_driver_in_this_process(isolated) -> None:
    remote = IsolatedDriver(EmulatedLivescan, _config())
    isolated.append(remote)
    local = EmulatedLivescan(_config())
    for driver in (remote, local):
        driver.open()
        driver.guide(2)
    assert remote.pid is not None and remote.pid != os.getpid()
    assert remote.name == local.name and remote.identity() == local.identity()
    assert remote.capabilities() == local.capabilities()
    for mode in (CaptureMode.FLAT_SINGLE, CaptureMode.ROLLED):
        a, b = remote.capture(mode), local.capture(mode)
        assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image)
        assert a.ppi == b.ppi
    assert remote.preview(CaptureMode.FLAT_SINGLE).image.shape == (
        local.preview(CaptureMode.FLAT_SINGLE).image.shape
    )
    local.close()


def test_driver_errors_cross_with_their_device_and_operation(isolated) -> None:
    driver = IsolatedDriver(EmulatedLivescan, _config(unplug_after_captures=1))
    isolated.append(driver)
    driver.open()
    driver.guide(2)
    driver.capture(CaptureMode.FLAT_SINGLE)
    with pytest.raises(ScannerDisconnected) as caught:
        driver.capture(CaptureMode.FLAT_SINGLE)
    assert caught.value.device == driver.name and caught.value.operation == "capture"
    assert "cable pulled" in str(caught.value)
    driver.replug()  # the emulator's own knob, served by the child
    driver.reset()
    assert driver.capture(CaptureMode.FLAT_SINGLE).image.shape == (750, 800)


def test_a_killed_child_is_a_pulled_cable_and_reopening_starts_a_fresh_one(isolated) -> None:
    driver = IsolatedDriver(EmulatedLivescan, _config())
    isolated.append(driver)
    driver.open()
    first = driver.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with pytest.raises(ScannerDisconnected) as caught:
        driver.capture(CaptureMode.FLAT_SINGLE)
    assert caught.value.operation == "capture" and "process ended" in str(caught.value)
    assert driver.pid is None
    driver.open()
    driver.guide(2)
    assert driver.pid not in (None, first)
    assert driver.capture(CaptureMode.FLAT_SINGLE).image.shape == (750, 800)


def test_a_child_that_stops_answering_is_a_timeout_and_is_ended(isolated) -> None:
    driver = IsolatedDriver(
        EmulatedLivescan,
        EmulatedConfig(image_source="pattern", process=True, capture_latency_s=5.0),
    )
    isolated.append(driver)
    driver.open()  # the child starts under the default limit, however loaded the machine is
    driver.guide(2)
    driver.timeout_s = 1.0  # only the capture, which takes 5 s, runs into it
    child = driver.pid
    assert child is not None
    with pytest.raises(ScannerTimeout) as caught:
        driver.capture(CaptureMode.FLAT_SINGLE)
    assert caught.value.operation == "capture"
    assert driver.pid is None
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


async def test_the_worker_stops_the_child_with_the_station() -> None:
    driver = IsolatedDriver(EmulatedLivescan, _config())
    states: list[ScannerState] = []
    worker = DeviceWorker(driver, reopen_min_s=0.05, reopen_max_s=0.2, on_state=states.append)
    worker.start()
    try:
        await worker.wait_ready(30)
        await worker.call(lambda d: d.guide(2))
        frame = await worker.capture(CaptureMode.FLAT_FOUR)
        assert frame.image.shape == (1500, 1600)
        child = driver.pid
        assert child is not None
    finally:
        await asyncio.to_thread(worker.stop, 30)
    assert states[-1] is ScannerState.STOPPED
    assert driver.pid is None and not _alive(child)
