"""The composition root: builds every service from config, starts in order, stops in reverse.

Order: store (nothing works without it) -> scanner worker -> imaging (NFIQ 2 and the model
warmed up) -> central link and uploader -> booking service -> web pages. READY=1 goes to
systemd only once a booking can really be taken; SIGTERM stops everything within
``system.stop_timeout_s``, and a booking being committed at that moment is either wholly stored
or not at all (the SQLite transaction decides). Nothing here holds a policy: the booking
workflow lives in :mod:`appliance.capture`, the central link in :mod:`appliance.sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from datetime import timedelta
from typing import Any

import uvicorn

from appliance.capture.booking import BookingService, ImagingThread
from appliance.capture.preview import PreviewLoop
from appliance.capture.processing import BookingProcessor, Originator
from appliance.config import StationConfig
from appliance.errors import StationError
from appliance.store.crypto import BlobCipher
from appliance.store.errors import StoreError
from appliance.store.keys import load_cipher
from appliance.store.store import Store
from appliance.sync.service import StationHooks, SyncService
from appliance.system.clock import ClockTrust, kernel_clock_state
from appliance.system.events import Events
from appliance.system.health import HealthService, HealthSources
from appliance.system.memory import fix_mmap_threshold
from appliance.system.sdnotify import Heartbeats, Notifier, feed_watchdog, watchdog_interval_s
from appliance.web.services import Services
from drivers.registry import build_driver
from drivers.worker import DeviceWorker, ScannerState

log = logging.getLogger(__name__)


class PortInUse(StationError):
    """The web port is taken by another program."""


def check_port_free(host: str, port: int) -> None:
    """Fail early, naming the port, when the web port is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port} for the kiosk page: {exc.strerror}; "
                "another program uses the port (set web.port to another port)"
            ) from exc


def build_processor(config: StationConfig) -> BookingProcessor:
    """The print checks and transaction builder the config describes."""
    minutiae = config.minutiae
    if config.system.malloc_mmap_threshold_kb == 0:
        # Under glibc's sliding mmap threshold, buffers handed back come back fragmented
        # and the peak grows instead (benchmarks/minutiae_eval.py, MMAP_THRESHOLD_KB = 0).
        minutiae = minutiae.model_copy(update={"release_memory": False})
    originator = Originator(config.station.station_id, config.station.ori,
                            config.records.profile)
    return BookingProcessor(config.quality, minutiae, originator)


class Station:
    """Every service of one booking station, wired together."""

    def __init__(self, config: StationConfig, *, store_key: bytes | None = None) -> None:
        self.config = config
        self.events = Events()
        self.notifier = Notifier()
        self.heartbeats = Heartbeats(config.system.heartbeat_stale_s)
        self.store_problem: str | None = None
        self.clock = ClockTrust.UNKNOWN
        self._store_key = store_key
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self.imaging = ImagingThread()
        self.processor = build_processor(config)
        self.store: Store | None = None
        self.worker: DeviceWorker | None = None
        self.sync: SyncService | None = None
        self.booking: BookingService | None = None
        self.health = HealthService(config.station.station_id, config.store.min_free_mb,
                                    HealthSources(
                                        store=lambda: self.store.health() if self.store else None,
                                        scanner_state=self._scanner_state,
                                        clock=lambda: self.clock.value,
                                        link_connects=lambda: (self.sync.link.counters.connects
                                                               if self.sync else 0),
                                        problems=lambda: ([self.store_problem]
                                                          if self.store_problem else []),
                                    ))
        self.web_port: int | None = None
        self._server: uvicorn.Server | None = None

    # ---- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every service in dependency order, then tell systemd we are ready."""
        loop = asyncio.get_running_loop()
        self.notifier.status("starting")
        fix_mmap_threshold(self.config.system.malloc_mmap_threshold_kb)
        check_port_free(self.config.web.host, self.config.web.port)
        self.clock = kernel_clock_state()
        self._start_store()
        self._start_scanner()
        await self.imaging.run(self.processor.warm_up)
        self._start_sync(loop)
        if self.store is not None and self.worker is not None:
            self.booking = BookingService(
                self.worker, self.store, self.processor, self.imaging, self.events,
                sequence=self.config.capture.sequence, clock=self.clock,
                lookup_dir=self.config.capture.subject_lookup_dir,
            )
            if self.sync is not None:
                sync = self.sync
                self.booking.committed.append(lambda _txid: sync.wake())
            await self.booking.resume_draft()
            await self.store.audit("station", "station_started",
                                   {"config_hash": self.config.digest()})
        await self._start_web()
        if self.worker is not None:
            await self.worker.wait_ready(timeout=30)
        interval = watchdog_interval_s()
        if interval:
            self._tasks.append(asyncio.create_task(
                feed_watchdog(self.notifier, self.heartbeats, interval), name="watchdog"))
        ready = self.store_problem is None
        status = "ready" if ready else f"degraded: {self.store_problem}"
        self.notifier.notify(READY=1, STATUS=status)
        log.info("station %s ready; kiosk on http://%s:%s/", self.config.station.station_id,
                 self.config.web.host, self.web_port)

    def _start_store(self) -> None:
        key = self._store_key
        cipher = BlobCipher(key) if key is not None else load_cipher(self.config.store)
        store = Store(self.config.database_path, cipher,
                      min_free_mb=self.config.store.min_free_mb)
        try:
            store.open()
        except StoreError as exc:
            self.store_problem = str(exc)
            log.critical("store: %s", exc)
            self.events.publish({"type": "alert", "message": f"store unavailable: {exc}"})
            return
        self.store = store
        self.heartbeats.register("store-writer", lambda: store.writer_heartbeat)
        cfg = self.config.store
        self._tasks.append(asyncio.create_task(store.maintain(
            grace=timedelta(hours=cfg.biometric_grace_hours),
            retention=timedelta(days=cfg.metadata_retention_days),
            backup_every=timedelta(hours=cfg.backup_interval_hours),
            backup_keep=cfg.backup_keep,
        ), name="store-maintenance"))

    def _start_scanner(self) -> None:
        driver = build_driver(self.config.scanner)
        loop = asyncio.get_running_loop()

        def on_state(state: ScannerState) -> None:
            # the owner thread may outlive a stop that ran out of time: a closed loop hears nothing
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.events.publish, {"type": "scanner", "state": state})

        self.worker = DeviceWorker(driver, on_state=on_state)
        self.worker.start()
        worker = self.worker
        self.heartbeats.register("scanner", lambda: worker.heartbeat)

    def _start_sync(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.store is None:
            return
        hooks = StationHooks(
            health=self.health.read,
            capabilities=lambda: (self.worker.capabilities.as_dict()
                                  if self.worker and self.worker.capabilities else None),
            scanner=self._scanner_identity,
            events=self.events.publish,
            diagnostics=self.diagnostics,
            clock_trusted=lambda: self.clock is ClockTrust.SYNCHRONISED,
            models=self.processor.model_versions,
        )
        self.sync = SyncService(self.config.station.station_id, self.config.mqtt, self.store,
                                hooks, sharing=self.config.sharing,
                                config_hash=self.config.digest())
        link = self.sync.link
        self.heartbeats.register("mqtt-link", lambda: link.heartbeat)
        self.sync.start(loop)

    def _scanner_state(self) -> str:
        return self.worker.state.value if self.worker else "absent"

    def _scanner_identity(self) -> dict[str, Any] | None:
        ident = self.worker.identity if self.worker else None
        return {"vendor": ident.vendor, "model": ident.model} if ident else None

    def scanner_report(self) -> dict[str, Any]:
        """The scanner's state, identity and counters for the technician page."""
        worker = self.worker
        ident = worker.identity if worker else None
        return {
            "state": self._scanner_state(),
            "vendor": ident.vendor if ident else None,
            "model": ident.model if ident else None,
            "counters": dataclasses.asdict(worker.counters) if worker else {},
        }

    def diagnostics(self) -> dict[str, Any]:
        """A redacted view for central operations: counters and states, never subject data."""
        worker = self.worker
        return {
            "scanner": {"state": self._scanner_state(),
                        "counters": dataclasses.asdict(worker.counters) if worker else {}},
            "store_problem": self.store_problem,
            "config_hash": self.config.digest(),
            "models": self.processor.model_versions(),
        }

    def services(self) -> Services:
        """What the web pages serve."""
        booking = self.booking
        quality, capture = self.config.quality, self.config.capture

        def preview() -> PreviewLoop:
            assert booking is not None
            return PreviewLoop(booking, fps=self.config.web.preview_fps,
                               auto_capture=capture.auto_capture,
                               auto_frames=quality.auto_capture_frames)

        return Services(
            station=self.config.station, web=self.config.web, health=self.health,
            events=self.events, booking=booking, preview=preview if booking else None,
            store=self.store, sync=self.sync, problem=lambda: self.store_problem,
            diagnostics=self.diagnostics, scanner=self.scanner_report,
        )

    async def _start_web(self) -> None:
        from appliance.web.app import create_app

        app = create_app(self.services())
        config = uvicorn.Config(app, host=self.config.web.host, port=self.config.web.port,
                                log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._tasks.append(asyncio.create_task(self._server.serve(), name="web"))
        while not self._server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise PortInUse(f"web server on port {self.config.web.port} did not start")
            await asyncio.sleep(0.02)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        self.web_port = sockets[0].getsockname()[1] if sockets else self.config.web.port

    # ---- stop -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`run_until_stopped` to stop (signal handlers call this)."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        """Start, wait for SIGTERM/SIGINT or :meth:`request_stop`, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stopping.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop every service in reverse order within the configured bound."""
        self.notifier.notify(STOPPING=1, STATUS="stopping")
        try:
            await asyncio.wait_for(self._stop_services(), self.config.system.stop_timeout_s)
        except TimeoutError:
            log.error("stop: services did not stop within %.0f s",
                      self.config.system.stop_timeout_s)

    async def _stop_services(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self.sync is not None:
            await self.sync.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
        await asyncio.to_thread(self.imaging.shutdown)
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.audit("station", "station_stopped", {})
            await asyncio.to_thread(self.store.close)
