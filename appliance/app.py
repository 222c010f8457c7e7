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
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from appliance.capture.booking import BookingService, ImagingThread
from appliance.capture.diagnostics import ScannerTools
from appliance.capture.preview import PreviewLoop
from appliance.capture.processing import BookingProcessor, Originator
from appliance.config import StationConfig
from appliance.errors import StationError
from appliance.phrase import Phrase
from appliance.reconfigure import Reconfigurer
from appliance.store.crypto import BlobCipher
from appliance.store.errors import DiskFull, StoreError, StoreUnavailable
from appliance.store.keys import load_cipher
from appliance.store.samples import Sample, delivered_total, keep_history
from appliance.store.store import Store
from appliance.sync.service import StationHooks, SyncService
from appliance.system.clock import ClockTrust, kernel_clock_state
from appliance.system.events import Events
from appliance.system.health import HealthService, HealthSources, below_floor
from appliance.system.logs import RecentLogs
from appliance.system.memory import fix_mmap_threshold
from appliance.system.sdnotify import Heartbeats, Notifier, feed_watchdog, watchdog_interval_s
from appliance.web.config import TechnicianTls
from appliance.web.services import Services
from drivers.registry import build_driver
from drivers.worker import DeviceWorker, ScannerState

log = logging.getLogger(__name__)
#: Seconds between two samples of the technician page's charts.
HISTORY_INTERVAL_S = 300.0
#: The kiosk warns of a nearly full disk below this many times the store's free-space floor.
NEARLY_FULL_FLOORS = 2


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

    def __init__(self, config: StationConfig, *, store_key: bytes | None = None,
                 config_path: Path | None = None, rollback_after_s: float = 60.0) -> None:
        self.config = config
        self.config_path = config_path
        self.events = Events()
        self.notifier = Notifier()
        self.heartbeats = Heartbeats(config.system.heartbeat_stale_s)
        self.store_problem: str | None = None
        self._services: Services | None = None
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
                                        problems=self._problems,
                                    ))
        self.web_port: int | None = None
        self._server: uvicorn.Server | None = None
        self._tls_server: uvicorn.Server | None = None
        self.tls_port: int | None = None
        self._services: Services | None = None
        self.recent_logs = RecentLogs()
        self.scanner_tools = ScannerTools(
            worker=lambda: self.worker, busy=self._busy,
            reconnect=lambda: self.restart_sections(self.config, {"scanner"}))
        self.reconfigurer = Reconfigurer(
            running=lambda: self.config, path=config_path, restart=self.restart_sections,
            healthy=self.sections_healthy, audit=self._audit, busy=self._busy,
            timeout_s=rollback_after_s)

    # ---- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every service in dependency order, then tell systemd we are ready."""
        loop = asyncio.get_running_loop()
        self.notifier.status("starting")
        logging.getLogger().addHandler(self.recent_logs)
        fix_mmap_threshold(self.config.system.malloc_mmap_threshold_kb)
        check_port_free(self.config.web.host, self.config.web.port)
        technician_tls = self.config.web.technician_tls
        if technician_tls is not None:
            check_port_free(technician_tls.host, technician_tls.port)
        self.clock = kernel_clock_state()
        retry_store = self._start_store()
        self._start_scanner()
        await self.imaging.run(self.processor.warm_up)
        await self._start_store_users(loop)
        await self._start_web()
        if retry_store:
            self._tasks.append(asyncio.create_task(self._reopen_store(loop), name="store-reopen"))
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

    async def _start_store_users(self, loop: asyncio.AbstractEventLoop) -> None:
        """The services that need the open store: upkeep, sync, then the booking workflow."""
        if self.store is None:
            return
        store = self.store
        cfg = self.config.store
        self._tasks.append(asyncio.create_task(store.maintain(
            grace=timedelta(hours=cfg.biometric_grace_hours),
            retention=timedelta(days=cfg.metadata_retention_days),
            backup_every=timedelta(hours=cfg.backup_interval_hours),
            backup_keep=cfg.backup_keep,
        ), name="store-maintenance"))
        self._start_sync(loop)
        self._start_booking()
        if self.booking is not None:
            await self.booking.resume_draft()
            await store.audit("station", "station_started",
                              {"config_hash": self.config.digest()})
        self._start_history()

    async def _reopen_store(self, loop: asyncio.AbstractEventLoop) -> None:
        """Try the store again until the disk has room; then start what needs it, no restart."""
        while self.store is None:
            await asyncio.sleep(self.config.system.store_retry_s)
            if self._store_outcome(await asyncio.to_thread(self._open_store)):
                continue
            if self.store is None:
                return  # a problem that waits for a technician (a corrupt store)
        self.store_problem = None
        await self._start_store_users(loop)
        if self._services is not None:
            self._refresh_services(self._services)
        log.info("store: opened after the disk problem cleared; bookings are taken again")
        self.events.publish({"type": "alert", "message": "store available again"})
        self.notifier.status("ready")

    def _store_problems(self) -> list[str]:
        found = [self.store_problem] if self.store_problem else []
        return found + self._open_store_problems()

    def _open_store_problems(self, *, take_back: bool = True) -> list[str]:
        found = []
        if self.store is not None:
            if self.store.damage:
                found.append(self.store.damage)
            short = self.store.space_problem(take_back=take_back)
            if short:
                found.append(Phrase(short + "; new bookings refused, sending to central goes on",
                                    short.code, **short.params))
        return found

    def _kiosk_notices(self) -> list[str]:
        """The open store's problems, and a disk nearing the floor before it refuses anything.

        Called on the event loop for every view of the kiosk: it looks at files only (the
        reserve is taken back by the health reads and the booking start, on worker threads).
        """
        found = self._open_store_problems(take_back=False)
        store = self.store
        if store is not None and not found:
            free, floor = store.disk_free_mb(), store.min_free_mb
            below = below_floor(free, floor)
            if below:
                found.append(below)
            elif free < NEARLY_FULL_FLOORS * floor:
                found.append(Phrase(f"disk nearly full: {free} MiB free, new bookings stop "
                                    f"below {floor} MiB; tell a technician", "disk_nearly_full",
                                    free=free, floor=floor))
        return found

    def _start_store(self) -> bool:
        """Open the store; on failure say why. True when a later try may succeed."""
        return self._store_outcome(self._open_store())

    def _open_store(self) -> Store | StoreError:
        """Open the store (blocking: integrity check, migrations); the store or why not."""
        key = self._store_key
        cipher = BlobCipher(key) if key is not None else load_cipher(self.config.store)
        store = Store(self.config.database_path, cipher,
                      min_free_mb=self.config.store.min_free_mb,
                      reserve_bytes=self.config.store.reserve_mb * 2**20,
                      keep_lossless=self.config.store.keep_lossless_prints)
        try:
            store.open()
        except StoreError as exc:
            return exc
        return store

    def _store_outcome(self, outcome: Store | StoreError) -> bool:
        """Keep an opened store, or say once why there is none; True when a retry may help."""
        if isinstance(outcome, Store):
            store = self.store = outcome
            self.heartbeats.register("store-writer", lambda: store.writer_heartbeat)
            return False
        retry = isinstance(outcome, DiskFull | StoreUnavailable)
        if str(outcome) != self.store_problem:
            log.critical("store: %s%s", outcome, "; trying again" if retry else "")
            self.events.publish({"type": "alert", "message": f"store unavailable: {outcome}"})
        self.store_problem = str(outcome)
        return retry

    def _start_booking(self) -> None:
        if self.store is None or self.worker is None:
            self.booking = None
            return
        self.booking = BookingService(
            self.worker, self.store, self.processor, self.imaging, self.events,
            sequence=self.config.capture.sequence, clock=self.clock,
            lookup_dir=self.config.capture.subject_lookup_dir,
        )
        if self.sync is not None:
            sync = self.sync
            self.booking.committed.append(lambda _txid: sync.wake())

    # ---- reconfiguring while running ------------------------------------------------------

    async def restart_sections(self, config: StationConfig, sections: set[str]) -> None:
        """Run on ``config``, restarting the services of the changed ``sections``."""
        loop = asyncio.get_running_loop()
        self.config = config
        if "mqtt" in sections and self.sync is not None:
            await self.sync.stop()
            self.sync = None
            self._start_sync(loop)
        if "scanner" in sections and self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
            self.worker = None
            self._start_scanner()
        if "quality" in sections:
            self.processor = build_processor(config)
            await self.imaging.run(self.processor.warm_up)
        self._start_booking()
        if self._services is not None:
            self._refresh_services(self._services)

    def sections_healthy(self, sections: set[str]) -> tuple[bool, str]:
        """Whether the services of ``sections`` are working again, and if not, why."""
        if "scanner" in sections and self._scanner_state() not in ("ready", "busy"):
            return False, f"the scanner is {self._scanner_state()}"
        if "mqtt" in sections and not (self.sync and self.sync.link.connected):
            error = self.sync.link.counters.last_error if self.sync else ""
            return False, "the central link did not connect" + (f": {error}" if error else "")
        if self.booking is None:
            return False, "the booking service did not start"
        return True, ""

    def _busy(self) -> str | None:
        if self.booking is not None and self.booking.booking is not None:
            return "a booking is in progress: finish or cancel it first"
        return None

    async def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        if self.store is not None:
            await self.store.audit(actor, action, detail)

    def _start_history(self) -> None:
        """A sample for the technician page's charts every few minutes."""
        store = self.store
        if store is None:
            return

        def read() -> Sample:
            health = self.health.read()
            counters = self.worker.counters if self.worker else None
            return Sample(queue_depth=health.queue_depth,
                          oldest_unsent_s=health.oldest_unsent_age_s,
                          delivered_total=store.read(delivered_total),
                          scanner_errors=counters.errors if counters else 0,
                          scanner_reconnects=counters.reopens if counters else 0,
                          disk_free_mb=health.disk_free_mb,
                          cpu_temperature_c=health.cpu_temperature_c)

        self._tasks.append(asyncio.create_task(
            keep_history(store, read, HISTORY_INTERVAL_S), name="health-history"))

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

    def _problems(self) -> list[str]:
        return self._store_problems() + (self.sync.problems() if self.sync else [])

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

    def _preview_factory(self, booking: BookingService | None
                         ) -> Callable[[], PreviewLoop] | None:
        if booking is None:
            return None
        quality, capture = self.config.quality, self.config.capture

        def preview() -> PreviewLoop:
            return PreviewLoop(booking, fps=self.config.web.preview_fps,
                               auto_capture=capture.auto_capture,
                               auto_frames=quality.auto_capture_frames)

        return preview

    def services(self) -> Services:
        """What the web pages serve (kept, so services started later reach them)."""
        if self._services is None:
            self._services = Services(
                station=self.config.station, web=self.config.web, health=self.health,
                events=self.events, booking=self.booking,
                preview=self._preview_factory(self.booking), store=self.store, sync=self.sync,
                problem=lambda: self.store_problem, notices=self._kiosk_notices,
                diagnostics=self.diagnostics,
                scanner=self.scanner_report, configuration=self.reconfigurer,
                recent_logs=self.recent_logs.lines, scanner_tools=self.scanner_tools,
            )
        return self._services

    def _refresh_services(self, services: Services) -> None:
        """After a restart of some services (or a store opened late), the pages serve them."""
        services.booking, services.sync, services.store = self.booking, self.sync, self.store
        services.preview = self._preview_factory(self.booking)

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
        tls = self.config.web.technician_tls
        if tls is not None:
            await self._start_technician_tls(app, tls)

    async def _start_technician_tls(self, app: Any, tls: TechnicianTls) -> None:
        """The technician page on the LAN over HTTPS; nothing of the kiosk is served there."""
        from appliance.web.tls import key_path, technician_only

        config = uvicorn.Config(technician_only(app), host=tls.host, port=tls.port,
                                ssl_certfile=str(tls.certificate), ssl_keyfile=str(key_path(tls)),
                                log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._tls_server = server
        task = asyncio.create_task(server.serve(), name="technician-tls")
        self._tasks.append(task)
        while not server.started:
            if task.done():
                task.result()
                raise PortInUse(f"technician page on port {tls.port} did not start")
            await asyncio.sleep(0.02)
        sockets = server.servers[0].sockets if server.servers else []
        self.tls_port = sockets[0].getsockname()[1] if sockets else tls.port

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
        for server in (self._server, self._tls_server):
            if server is not None:
                server.should_exit = True
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
        logging.getLogger().removeHandler(self.recent_logs)
