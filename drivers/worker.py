"""One owner thread per scanner, offered to asyncio.

The driver object is touched only from this thread (docs/architecture.md, concurrency).
Coroutines submit jobs and await futures; a streaming job (live preview) checks a cancel flag
between frames, so cancelling the awaiting task stops the device promptly without killing the
thread. The worker also supervises the device: when it disappears the state becomes
``disconnected`` and the worker keeps reopening it with backoff until it returns, without
restarting the service.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from appliance.handoff import settle
from drivers.base import CaptureMode, Frame, ScannerDriver
from drivers.errors import ScannerDisconnected, ScannerError, ScannerTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScannerState(enum.StrEnum):
    """What the kiosk banner and telemetry say about the scanner."""

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


USABLE_STATES = frozenset({ScannerState.READY, ScannerState.BUSY})


@dataclass(slots=True)
class _Job:
    run: Callable[[ScannerDriver, threading.Event], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    preemptible: bool = False  # a live preview gives way to any other job


@dataclass(slots=True)
class WorkerCounters:
    """Error counters for the admin page's scanner diagnostics."""

    jobs: int = 0
    errors: int = 0
    disconnects: int = 0
    reopens: int = 0
    resets: int = 0
    timeouts_in_a_row: int = 0
    last_error: str = ""


class DeviceWorker:
    """Owns a ``ScannerDriver`` in a named thread and runs jobs for asyncio callers."""

    def __init__(
        self,
        driver: ScannerDriver,
        *,
        reopen_min_s: float = 0.2,
        reopen_max_s: float = 10.0,
        wedged_after_timeouts: int = 3,
        on_state: Callable[[ScannerState], None] | None = None,
    ) -> None:
        self.driver = driver
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name=f"scanner:{driver.name}", daemon=True
        )
        self._state = ScannerState.STARTING
        self._on_state = on_state
        self._reopen_min_s = reopen_min_s
        self._reopen_max_s = reopen_max_s
        self._wedged_after = wedged_after_timeouts
        self._next_reset = 0.0
        self._reset_delay = reopen_min_s
        self.counters = WorkerCounters()
        self._running: _Job | None = None
        self.heartbeat = time.monotonic()
        self.identity: Any = None
        self.capabilities: Any = None

    @property
    def state(self) -> ScannerState:
        """The scanner's state as last seen by the owner thread."""
        return self._state

    def _set_state(self, state: ScannerState) -> None:
        if state is not self._state:
            log.info("scanner %s: %s -> %s", self.driver.name, self._state, state)
            self._state = state
            if self._on_state is not None:
                self._on_state(state)

    def start(self) -> None:
        """Start the owner thread; it opens the device."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to close the device and finish; waits up to ``timeout``."""
        self._jobs.put(None)
        self._thread.join(timeout)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the device is open (or raise TimeoutError)."""
        deadline = time.monotonic() + timeout
        while self._state not in USABLE_STATES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"scanner {self.driver.name} not ready: {self._state}")
            await asyncio.sleep(0.05)

    async def call(self, fn: Callable[[ScannerDriver], T]) -> T:
        """Run ``fn(driver)`` on the owner thread and return its result."""
        return await self.call_cancellable(lambda drv, _cancel: fn(drv))

    async def call_cancellable(self, fn: Callable[[ScannerDriver, threading.Event], T], *,
                               preemptible: bool = False) -> T:
        """Run ``fn(driver, cancel_event)``; cancelling the awaiting task sets the event.

        A ``preemptible`` job (the live preview) has its event set as soon as another job is
        queued, so a capture never waits behind a preview that nobody has stopped yet.
        """
        loop = asyncio.get_running_loop()
        job = _Job(run=fn, loop=loop, future=loop.create_future(), preemptible=preemptible)
        running = self._running
        if running is not None and running.preemptible and not preemptible:
            running.cancel.set()
        self._jobs.put(job)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            job.cancel.set()
            raise

    async def capture(self, mode: CaptureMode) -> Frame:
        """A full-quality capture."""
        return await self.call(lambda drv: drv.capture(mode))

    async def preview(self, mode: CaptureMode, fps: float) -> AsyncIterator[Frame]:
        """Live preview frames at up to ``fps`` until the consumer stops iterating."""
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[Frame | BaseException | None] = asyncio.Queue(maxsize=2)

        def push(item: Frame | BaseException | None) -> None:
            if frames.full():  # a slow consumer sees the newest frame, not a backlog
                frames.get_nowait()
            frames.put_nowait(item)

        def stream(drv: ScannerDriver, cancel: threading.Event) -> None:
            period = 1.0 / fps
            while not cancel.is_set():
                started = time.monotonic()
                try:
                    frame = drv.preview(mode)
                except ScannerError as exc:
                    loop.call_soon_threadsafe(push, exc)
                    raise
                self.heartbeat = time.monotonic()
                loop.call_soon_threadsafe(push, frame)
                rest = period - (time.monotonic() - started)
                if rest > 0:
                    cancel.wait(rest)
            loop.call_soon_threadsafe(push, None)  # preempted: the stream ends here

        task = asyncio.ensure_future(self.call_cancellable(stream, preemptible=True))
        try:
            while True:
                item = await frames.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, ScannerError):
                pass

    # ---- owner thread -------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            self.driver.open()
            self.identity = self.driver.identity()
            self.capabilities = self.driver.capabilities()
        except ScannerError as exc:
            self.counters.errors += 1
            self.counters.last_error = str(exc)
            log.warning("scanner %s: open failed: %s", self.driver.name, exc)
            return False
        self._set_state(ScannerState.READY)
        return True

    def _run(self) -> None:
        delay = self._reopen_min_s
        while not self._open():
            self._set_state(ScannerState.DISCONNECTED)
            if self._wait_or_stop(delay):
                return
            delay = min(delay * 2, self._reopen_max_s)
        delay = self._reopen_min_s
        while True:
            absent = self._state is ScannerState.DISCONNECTED
            try:
                job = self._jobs.get(timeout=delay if absent else 1.0)
            except queue.Empty:
                self.heartbeat = time.monotonic()
                if absent and not self._reopen():
                    delay = min(delay * 2, self._reopen_max_s)  # poll an absent device, backing off
                continue
            delay = self._reopen_min_s
            if job is None:
                break
            self._execute(job)
        try:
            self.driver.close()
        except ScannerError:
            log.warning("scanner %s: close failed", self.driver.name, exc_info=True)
        self.driver.shutdown()
        self._set_state(ScannerState.STOPPED)

    def _wait_or_stop(self, delay: float) -> bool:
        try:
            job = self._jobs.get(timeout=delay)
        except queue.Empty:
            return False
        if job is None:
            self._set_state(ScannerState.STOPPED)
            return True
        job.loop.call_soon_threadsafe(
            settle, job.future, None, ScannerDisconnected("not connected", device=self.driver.name)
        )
        return False

    def _reopen(self) -> bool:
        try:
            self.driver.close()
        except ScannerError:
            pass
        if self._open():
            self.counters.reopens += 1
            return True
        return False

    def _reset_wedged(self) -> bool:
        """The device keeps timing out: reset it (USB reset or port reopen), with backoff."""
        now = time.monotonic()
        if now < self._next_reset:
            return True
        log.warning("scanner %s: %d timeouts in a row; resetting the device", self.driver.name,
                    self.counters.timeouts_in_a_row)
        self.counters.resets += 1
        try:
            self.driver.reset()
        except ScannerError as exc:
            self.counters.last_error = f"reset failed: {exc}"
            self._reset_delay = min(self._reset_delay * 2, self._reopen_max_s)
            self._next_reset = now + self._reset_delay
            return False
        self.counters.timeouts_in_a_row = 0
        self._reset_delay = self._reopen_min_s
        self._next_reset = now + self._reset_delay
        return True

    def _execute(self, job: _Job) -> None:
        if job.cancel.is_set():
            job.loop.call_soon_threadsafe(settle, job.future, None, asyncio.CancelledError())
            return
        absent = self._state is ScannerState.DISCONNECTED and not self._reopen()
        self.counters.jobs += 1
        self._set_state(ScannerState.BUSY)
        result: Any = None
        error: BaseException | None = None
        self._running = job
        if job.preemptible and not self._jobs.empty():
            job.cancel.set()  # another job is already waiting
        try:
            result = job.run(self.driver, job.cancel)
        except ScannerDisconnected as exc:
            error = exc
            self.counters.disconnects += 1
            self.counters.last_error = str(exc)
        except ScannerTimeout as exc:
            error = exc
            self.counters.errors += 1
            self.counters.last_error = str(exc)
            self.counters.timeouts_in_a_row += 1
        except ScannerError as exc:
            error = exc
            self.counters.errors += 1
            self.counters.last_error = str(exc)
        except Exception as exc:  # a driver bug must not kill the owner thread
            log.exception("scanner %s: job failed", self.driver.name)
            error = exc
            self.counters.errors += 1
        finally:
            self._running = None
        if not isinstance(error, ScannerTimeout):
            self.counters.timeouts_in_a_row = 0
        elif self.counters.timeouts_in_a_row >= self._wedged_after:
            absent = not self._reset_wedged()
        self.heartbeat = time.monotonic()
        if isinstance(error, ScannerDisconnected) or absent:
            self._set_state(ScannerState.DISCONNECTED)
        else:
            self._set_state(ScannerState.READY)
        job.loop.call_soon_threadsafe(settle, job.future, result, error)
