"""Scanner diagnostics for the technician: a test capture, a frame-rate test, counters, reconnect.

A test capture is the technician's own finger on the platen: it is encoded for the page and
forgotten, never stored, never sent. Every tool refuses while a booking is open, so a
technician on the LAN cannot take the scanner away from the officer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from appliance.capture.preview import jpeg
from appliance.errors import CaptureError
from drivers.base import CaptureMode
from drivers.worker import DeviceWorker, WorkerCounters

#: Longest side of the test capture shown to the technician (pixels).
TEST_CAPTURE_SIDE = 480
#: Longest frame-rate test a technician may ask for (seconds).
FRAME_RATE_MAX_S = 10.0


class ScannerBusy(CaptureError):
    """The scanner is taking a booking, or there is no scanner."""


class ScannerTools:
    """The technician's scanner tools over the station's one device worker."""

    def __init__(self, worker: Callable[[], DeviceWorker | None],
                 busy: Callable[[], str | None],
                 reconnect: Callable[[], Awaitable[None]]) -> None:
        self._worker = worker
        self._busy = busy
        self._reconnect = reconnect
        self._lock = asyncio.Lock()

    def _free_worker(self) -> DeviceWorker:
        worker = self._worker()
        if worker is None:
            raise ScannerBusy("no scanner is configured")
        why = self._busy()
        if why:
            raise ScannerBusy(why)
        return worker

    async def test_capture(self) -> bytes:
        """One capture of a single finger, as a small JPEG for the page (kept nowhere)."""
        async with self._lock:
            frame = await self._free_worker().capture(CaptureMode.FLAT_SINGLE)
        return await asyncio.to_thread(jpeg, frame.image, TEST_CAPTURE_SIDE)

    async def frame_rate(self, seconds: float) -> dict[str, float]:
        """Preview frames delivered in ``seconds`` (as fast as the device goes)."""
        seconds = min(max(seconds, 0.5), FRAME_RATE_MAX_S)
        async with self._lock:
            worker = self._free_worker()
            frames = 0
            started = time.monotonic()
            stream = worker.preview(CaptureMode.FLAT_SINGLE, fps=60.0)
            try:
                async for _frame in stream:
                    frames += 1
                    if time.monotonic() - started >= seconds:
                        break
            finally:
                await stream.aclose()
            took = time.monotonic() - started
        return {"frames": frames, "seconds": round(took, 2),
                "fps": round(frames / took, 1) if took > 0 else 0.0}

    def counters(self) -> dict[str, Any]:
        """The worker's error counters and state."""
        worker = self._worker()
        if worker is None:
            return {"state": "absent"}
        return {"state": worker.state.value, **asdict(worker.counters)}

    def reset_counters(self) -> dict[str, Any]:
        """Start the error counters from zero (the history keeps what they were)."""
        worker = self._worker()
        if worker is not None:
            worker.counters = WorkerCounters()
        return self.counters()

    async def reconnect(self) -> dict[str, Any]:
        """Close the device and open it again."""
        async with self._lock:
            self._free_worker()
            await self._reconnect()
        return self.counters()
