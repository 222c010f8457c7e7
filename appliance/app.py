"""The composition root: builds every service from config, starts in order, stops in reverse.

Order: store (nothing works without it) -> scanner worker -> imaging -> central link and
uploader -> capture session -> web pages. READY=1 goes to systemd only once a booking can really
be taken; SIGTERM stops everything within ``system.stop_timeout_s``, and a booking being committed
at that moment is either wholly stored or not at all (the SQLite transaction decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn

from appliance.capture.inspection import Inspection
from appliance.capture.processing import BookingProcessor
from appliance.capture.session import CaptureSession
from appliance.config import StationConfig, read_secret
from appliance.domain import Annotation, Booking, Impression, Position
from appliance.errors import CaptureError, StationError
from appliance.scanner_cli import build_driver
from appliance.store.crypto import BlobCipher
from appliance.store.drafts import DraftStore
from appliance.store.errors import StoreError
from appliance.store.keys import load_cipher
from appliance.store.store import Store
from appliance.sync import telemetry
from appliance.sync.link import MqttLink
from appliance.sync.protocol import Topics
from appliance.sync.service import StationHooks, SyncService
from appliance.sync.upload import Uploader
from appliance.system.clock import ClockTrust, kernel_clock_state
from appliance.system.memory import fix_mmap_threshold
from appliance.system.sdnotify import Heartbeats, Notifier, feed_watchdog, watchdog_interval_s
from drivers.worker import DeviceWorker, ScannerState

log = logging.getLogger(__name__)


class PortInUse(StationError):
    """The web port is taken by another program."""


@dataclass(slots=True)
class Events:
    """A tiny fan-out of station events to kiosk websockets and telemetry."""

    listeners: list[asyncio.Queue[dict[str, Any]]] = field(default_factory=list)

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event to every listener (slow listeners lose the oldest)."""
        for q in self.listeners:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        """A new listener queue."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.listeners.append(q)
        return q

    def forget(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Drop a listener."""
        with contextlib.suppress(ValueError):
            self.listeners.remove(q)


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


class Station:
    """Every service of one booking station, wired together."""

    def __init__(self, config: StationConfig, *, store_key: bytes | None = None) -> None:
        self.config = config
        self.events = Events()
        self.notifier = Notifier()
        self.heartbeats = Heartbeats(config.system.heartbeat_stale_s)
        self.topics = Topics(config.mqtt.topic_prefix, config.station.station_id)
        self.store_problem: str | None = None
        self.clock = ClockTrust.UNKNOWN
        self._store_key = store_key
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self.imaging = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imaging")
        self.store: Store | None = None
        self.worker: DeviceWorker | None = None
        self.link: MqttLink | None = None
        self.uploader: Uploader | None = None
        self.sync: SyncService | None = None
        self.session: CaptureSession | None = None
        self.processor = BookingProcessor(config)
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
        await asyncio.get_running_loop().run_in_executor(self.imaging, self.processor.warm_up)
        self._start_sync(loop)
        if self.store is not None and self.worker is not None:
            drafts = DraftStore(self.store)
            self.session = CaptureSession(
                self.worker, drafts, self.submit_booking,
                sequence=self.config.capture.sequence, audit=self._audit_officer,
                inspect=self._inspect, prepare=self._prepare, discard=self._discard,
            )
            found = await asyncio.to_thread(drafts.load)
            if found:
                self.session.resume(found[-1])
                log.info("capture: resumed a booking in progress with %d accepted prints",
                         len(found[-1].impressions))
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
        driver = build_driver(self.config)
        loop = asyncio.get_running_loop()

        def on_state(state: ScannerState) -> None:
            loop.call_soon_threadsafe(self.events.publish, {"type": "scanner", "state": state})

        self.worker = DeviceWorker(driver, on_state=on_state)
        self.worker.start()
        worker = self.worker
        self.heartbeats.register("scanner", lambda: worker.heartbeat)

    def _start_sync(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.store is None:
            return
        cfg = self.config.mqtt
        tls_context = None
        password = None
        if cfg.tls is not None:
            from appliance.sync.tls import client_context

            passphrase = (read_secret(cfg.tls.key_passphrase_credential).strip()
                          if cfg.tls.key_passphrase_credential else None)
            tls_context = client_context(cfg.tls, passphrase)
        if cfg.username and cfg.password_credential:
            password = read_secret(cfg.password_credential).decode().strip()
        hooks = StationHooks(
            health=self.health,
            capabilities=lambda: (self.worker.capabilities.as_dict()
                                  if self.worker and self.worker.capabilities else None),
            scanner=self._scanner_identity,
            events=self.events.publish,
            diagnostics=self.diagnostics,
            clock_trusted=lambda: self.clock is ClockTrust.SYNCHRONISED,
            models=self.processor.model_versions,
        )
        self.sync = SyncService(self.config, self.store, hooks, tls_context=tls_context,
                                password=password)
        self.link, self.uploader = self.sync.link, self.sync.uploader
        link = self.link
        self.heartbeats.register("mqtt-link", lambda: link.heartbeat)
        self.sync.start(loop)

    def _scanner_identity(self) -> dict[str, Any] | None:
        ident = self.worker.identity if self.worker else None
        return {"vendor": ident.vendor, "model": ident.model} if ident else None

    def diagnostics(self) -> dict[str, Any]:
        """A redacted view for central operations: counters and states, never subject data."""
        worker = self.worker
        return {
            "scanner": {"state": worker.state.value if worker else "absent",
                        "counters": dataclasses.asdict(worker.counters) if worker else {}},
            "store_problem": self.store_problem,
            "config_hash": self.config.digest(),
            "models": self.processor.model_versions(),
        }

    async def _start_web(self) -> None:
        from appliance.web.app import create_app

        app = create_app(self)
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

    # ---- events ---------------------------------------------------------------------------

    async def _audit_officer(self, action: str, detail: dict[str, Any]) -> None:
        if self.store is not None:
            await self.store.audit("officer", action, detail)

    def health(self) -> telemetry.Health:
        """The station's health now."""
        h = self.store.health() if self.store is not None else None
        alerts = [self.store_problem] if self.store_problem else []
        if h is not None and h.disk_free_mb < self.config.store.min_free_mb:
            alerts.append("disk nearly full: new bookings refused")
        return telemetry.Health(
            station_id=self.config.station.station_id,
            queue_depth=h.queue_depth if h else 0,
            oldest_unsent_age_s=telemetry.age_seconds(h.oldest_unsent_at) if h else None,
            disk_free_mb=h.disk_free_mb if h else 0,
            scanner_state=self.worker.state.value if self.worker else "absent",
            audit_head=h.audit_head if h else "",
            audit_entries=h.audit_entries if h else 0,
            clock=self.clock.value,
            link_connects=self.link.counters.connects if self.link else 0,
            cpu_temperature_c=telemetry.cpu_temperature_c(),
            alerts=alerts,
        )

    # ---- the booking path -----------------------------------------------------------------

    async def _inspect(self, imp: Impression, annotations: dict[Position, Annotation],
                       retakes: int) -> Inspection:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.imaging, self.processor.inspect, imp,
                                          annotations, retakes)

    def _prepare(self, imp: Impression, annotations: dict[Position, Annotation]) -> None:
        """Queue work on an accepted print for the imaging thread; nobody waits for it."""
        self.imaging.submit(self.processor.prepare, imp, annotations)

    def _discard(self, prints: list[Impression]) -> None:
        """Queue dropping what the imaging thread kept for prints that will not be submitted."""
        self.imaging.submit(self.processor.discard, prints)

    async def submit_booking(self, booking: Booking, confirm_sequence: bool = False) -> str:
        """Check, process and commit the finished booking atomically; wakes the uploader."""
        if self.store is None:
            raise StationError(self.store_problem or "the store is not available")
        booking.clock_trusted = self.clock is ClockTrust.SYNCHRONISED
        loop = asyncio.get_running_loop()
        sequence = await loop.run_in_executor(self.imaging, self.processor.sequence, booking)
        if sequence is not None and sequence.flagged:
            if not confirm_sequence:
                names = "; ".join(
                    f"{p.label}: {sequence.results[p].reason}" for p in sequence.flagged)
                raise CaptureError(f"sequence check: {names}. Retake those prints, or submit "
                                   "anyway if you are sure.")
            await self.store.audit("officer", "quality_override", {
                "booking_id": booking.booking_id,
                "sequence_flagged": [int(p) for p in sequence.flagged]})
        processed = await loop.run_in_executor(self.imaging, self.processor.build, booking)
        txid = await self.store.commit_booking(
            booking, processed.transaction, content_type=processed.content_type,
            templates=processed.templates,
        )
        self.imaging.submit(self.processor.forget, booking)
        self.events.publish({"type": "delivery", "transaction_id": txid, "state": "queued"})
        if self.sync is not None:
            self.sync.wake()
        return txid

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
        self.imaging.shutdown(wait=True)
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.audit("station", "station_stopped", {})
            await asyncio.to_thread(self.store.close)
