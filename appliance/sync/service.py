"""The station's side of central: link, outbox drain, telemetry and commands as one service.

The composition root builds one :class:`SyncService` from the config, the store and a few
callables (:class:`StationHooks`) through which the service asks the rest of the station what it
needs (health, scanner identity, diagnostics, clock trust) and tells it what happened (link,
delivery and alert events). Everything runs on the station's event loop except the MQTT network
thread inside :class:`MqttLink`; nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import sqlite3
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance import __version__
from appliance.errors import SyncError
from appliance.store.database import utcnow
from appliance.store.errors import StoreError
from appliance.store.store import Store
from appliance.sync import telemetry
from appliance.sync.commands import Command, CommandGate, CommandRefused, reply_topic_allowed
from appliance.sync.config import MqttSection, SharingManifest
from appliance.sync.link import MqttLink, NotConnected
from appliance.sync.protocol import PROTOCOL_VERSION, Topics, parse_passed_on
from appliance.sync.receipts import AckRefused, AckVerifier
from appliance.sync.signing import CentralKeys
from appliance.sync.tls import (
    TlsFailure,
    TlsFailureKind,
    clock_against_certificate,
    station_context,
)
from appliance.sync.upload import Uploader
from appliance.system.secrets import read_secret

log = logging.getLogger(__name__)

COMMAND_QUEUE = 32  # commands waiting to run; more are dropped (logged), never piled up
EVENT_BACKLOG = 100  # alerts kept while offline, oldest dropped first
REFUSED_ACK_AUDITS = 20  # refused acks audited one by one per window; the rest only counted
REFUSED_ACK_WINDOW_S = 600.0


def _nothing() -> None:
    return None


def _drop(_event: dict[str, Any]) -> None:
    return None


def _untrusted() -> bool:
    return False


@dataclass(slots=True)
class StationHooks:
    """What the sync service asks of the station, and where it reports events.

    ``health`` may block briefly (store reads): it runs in a worker thread. The others run on
    the event loop and must be quick.
    """

    health: Callable[[], telemetry.Health]
    capabilities: Callable[[], dict[str, Any] | None] = _nothing
    scanner: Callable[[], dict[str, Any] | None] = _nothing
    events: Callable[[dict[str, Any]], None] = _drop
    diagnostics: Callable[[], dict[str, Any]] = dict
    clock_trusted: Callable[[], bool] = _untrusted
    models: Callable[[], dict[str, str]] = dict


class SyncService:
    """Link + uploader + telemetry + commands for one station."""

    def __init__(
        self,
        station_id: str,
        mqtt: MqttSection,
        store: Store,
        hooks: StationHooks,
        *,
        sharing: SharingManifest | None = None,
        config_hash: str = "",
        tls_context: ssl.SSLContext | None = None,
        password: str | None = None,
    ) -> None:
        """Build everything; raises SyncError (TLS files, central key) before anything starts.

        ``config_hash`` names the station's whole configuration in the birth message.
        """
        self.mqtt = mqtt
        self.store = store
        self.hooks = hooks
        self.sharing = sharing or SharingManifest()
        self.config_hash = config_hash
        self.station_id = station_id
        self.instance = secrets.token_hex(8)  # tells this process's birth from a twin's
        cfg = mqtt
        self.topics = Topics(cfg.topic_prefix, self.station_id)
        if tls_context is None and cfg.tls is not None:
            tls_context = station_context(cfg.tls)
        if password is None and cfg.username and cfg.password_credential:
            password = read_secret(cfg.password_credential).decode().strip()
        keys = CentralKeys.load(cfg.central_keys)
        self.gate = CommandGate(cfg.commands, keys, allow_unsigned=cfg.allow_unsigned_commands)
        self.acks = AckVerifier(station_id, keys, allow_unsigned=cfg.allow_unsigned_acks)
        self.link = MqttLink(
            cfg,
            client_id=f"station-{self.station_id}",
            subscriptions=[self.topics.ack, self.topics.commands, self.topics.status,
                           self.topics.passed_on],
            on_message=self._on_message,
            on_connection=self._on_connection,
            will=(self.topics.status, telemetry.will(self.station_id)),
            tls_context=tls_context,
            password=password,
            on_failure=self._on_tls_failure,
            ignore_retained=True,
            retained_wanted=frozenset({self.topics.status}),
        )
        self.uploader = Uploader(
            store, self.link, self.topics, cfg,
            clock_trusted=self._clock_trusted,
            manifest_version=self.sharing.version,
            on_change=self._on_delivery,
        )
        self.ignored = 0  # messages on our topics that were not ours to act on
        self.acks_refused = 0  # forged, altered, unsigned or misdirected acks (never applied)
        self._refused_audited: deque[float] = deque()
        self._drain_mark: tuple[float, int] | None = None  # (monotonic time, delivered)
        self._passed_on: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._commands: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue(COMMAND_QUEUE)
        self._events: deque[bytes] = deque(maxlen=EVENT_BACKLOG)
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_failure: TlsFailureKind | None = None
        self._stopped = False

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the network thread, the drain, the health loop and the command runner."""
        tls = self.mqtt.tls
        if tls is not None:
            with contextlib.suppress(SyncError):
                problem = clock_against_certificate(tls.cert_file)
                if problem:
                    self.alert("clock", problem)
        self.link.start(loop)
        for name, coro in (("uploader", self.uploader.run()),
                           ("telemetry", self._telemetry_loop()),
                           ("commands", self._command_loop())):
            self._tasks.append(loop.create_task(coro, name=f"sync-{name}"))

    async def stop(self) -> None:
        """Stop uploads (rows stay queued), say offline cleanly, end the network thread."""
        if self._stopped:
            return
        self._stopped = True
        await self.uploader.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.link.connected:
            with contextlib.suppress(SyncError, TimeoutError):
                async with asyncio.timeout(2):
                    await self.link.publish(self.topics.status,
                                            telemetry.offline_clean(self.station_id), retain=True)
        await asyncio.to_thread(self.link.stop)

    def wake(self) -> None:
        """A booking was queued (or something else changed): look at the outbox now."""
        self.uploader.wake()

    @property
    def clock_problem(self) -> str:
        """A sentence when TLS failures point at this station's clock, else empty."""
        return self.link.counters.clock_problem

    # ---- events and telemetry -------------------------------------------------------------

    def alert(self, kind: str, message: str, *, detail: dict[str, Any] | None = None,
              severity: str = "warning") -> None:
        """Raise an alert: to the station's own pages now, to central now or once connected."""
        self.hooks.events({"type": "alert", "kind": kind, "message": message})
        payload = telemetry.event(self.station_id, kind, message, severity=severity,
                                  detail=detail)
        if self.link.connected:
            self.link.publish_nowait(self.topics.alerts, payload, qos=1)
        else:
            self._events.append(payload)

    async def publish_health(self) -> telemetry.Health:
        """Publish one health message now; returns it."""
        health = await asyncio.to_thread(self.hooks.health)
        health = dataclasses.replace(
            health,
            link_connects=self.link.counters.connects,
            uploads_paused=self.uploader.paused,
            throttle_per_s=self.uploader.rate_per_s,
            clock_problem=self.clock_problem,
            acks_refused=self.acks_refused,
            session_taken_over=self.link.counters.taken_over,
            alerts=health.alerts + [p for p in self.problems() if p not in health.alerts],
            delivered=self.uploader.delivered,
            drain_per_s=self._drain_rate(),
            command_signature_failures=self.gate.signature_failures,
            receipt_signature_failures=self.acks_refused,
        )
        self.link.publish_nowait(self.topics.health, health.encode(), qos=0)
        return health

    async def passed_on(self, txid: str, timeout: float = 30.0) -> dict[str, Any]:
        """Ask central where a stored transaction was passed on (the other half of the receipt).

        Raises TimeoutError when central does not answer, NotConnected while offline.
        """
        waiting = asyncio.get_running_loop().create_future()
        self._passed_on[txid] = waiting
        try:
            await self.link.publish(self.topics.query(txid), b"", qos=1)
            async with asyncio.timeout(timeout):
                return await waiting
        finally:
            if self._passed_on.get(txid) is waiting:
                del self._passed_on[txid]

    def _drain_rate(self) -> float:
        """Deliveries per second since the previous health message."""
        now, delivered = time.monotonic(), self.uploader.delivered
        mark, self._drain_mark = self._drain_mark, (now, delivered)
        if mark is None or now <= mark[0]:
            return 0.0
        return round((delivered - mark[1]) / (now - mark[0]), 3)

    async def _telemetry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.mqtt.telemetry.interval_s)
            try:
                await self.publish_health()
            except Exception:  # health must never stop the service; logged with traceback
                log.exception("sync: health message failed")

    def _birth(self) -> bytes:
        return telemetry.birth(
            self.station_id,
            capabilities=self.hooks.capabilities(),
            scanner=self.hooks.scanner(),
            config_hash=self.config_hash,
            models=self.hooks.models(),
            manifest_version=self.sharing.version,
            protocol=PROTOCOL_VERSION,
            instance=self.instance,
        )

    def _clock_trusted(self) -> bool:
        return self.hooks.clock_trusted() and not self.clock_problem

    # ---- link callbacks (event loop) ------------------------------------------------------

    def _on_connection(self, up: bool) -> None:
        self.hooks.events({"type": "link", "connected": up})
        if not up:
            return
        self._last_failure = None
        try:
            self.link.publish_nowait(self.topics.status, self._birth(), retain=True)
        except Exception:  # a hook failed; the link must still come up
            log.exception("sync: cannot build the birth message")
        while self._events:
            self.link.publish_nowait(self.topics.alerts, self._events.popleft(), qos=1)
        self.uploader.wake()

    def _on_tls_failure(self, failure: TlsFailure) -> None:
        if failure.kind is self._last_failure:
            return  # one alert per kind of failure, not one per reconnect attempt
        self._last_failure = failure.kind
        if failure.kind is TlsFailureKind.CLOCK:
            self.alert("clock", failure.detail, severity="critical")
        else:
            self.alert("tls", f"TLS {failure.kind.value}: {failure.detail}"[:500])

    def _on_delivery(self, txid: str, state: str, detail: dict[str, Any]) -> None:
        self.hooks.events({"type": "delivery", "transaction_id": txid, "state": state,
                           "reason": detail.get("reason")})
        if state == "rejected":
            self.alert("rejected", "central rejected a transaction",
                       detail={"transaction_id": txid, "reason": detail.get("reason", "")[:200]})

    def _on_message(self, topic: str, payload: bytes, properties: Any) -> None:
        try:
            if topic == self.topics.ack:
                self._on_ack(payload)
            elif topic == self.topics.status:
                self._on_status(payload)
            elif topic == self.topics.passed_on:
                answer = parse_passed_on(payload)
                waiting = self._passed_on.get(answer["transaction_id"])
                if waiting is not None and not waiting.done():
                    waiting.set_result(answer)
            elif topic == self.topics.commands:
                try:
                    self._commands.put_nowait((payload, properties))
                except asyncio.QueueFull:
                    self.ignored += 1
                    log.warning("sync: command dropped: %d commands are waiting", COMMAND_QUEUE)
            else:
                self.ignored += 1
                log.warning("sync: ignored a message on an unexpected topic")
        except Exception:  # whatever arrives, the station keeps running; logged with traceback
            self.ignored += 1
            log.exception("sync: failed to handle a message on %s", topic[:120])

    def _on_status(self, payload: bytes) -> None:
        """Our own status topic: another instance's birth there means a twin holds our id."""
        try:
            status = json.loads(payload) if payload else {}
        except (UnicodeDecodeError, ValueError, RecursionError):
            return
        if not isinstance(status, dict) or status.get("state") != "online":
            return
        other = status.get("instance")
        if isinstance(other, str) and other and other != self.instance:
            if other > self.instance:
                # one of the two must give way, and both must agree which without talking:
                # the instance that sorts first keeps the connection; the other steps aside
                log.warning("sync: another instance (%s) uses this station's id; keeping the "
                            "connection, the other one steps aside", other[:16])
                return
            if self.link.twin_seen(f"its birth names instance {other[:16]!r}"):
                self.alert("identity", "another station uses this station's id on the broker; "
                           "this one steps aside", severity="critical")

    # ---- acks -----------------------------------------------------------------------------

    def _on_ack(self, payload: bytes) -> None:
        """Hand the uploader only an ack central signed for this station."""
        try:
            self.acks.admit(payload)
        except AckRefused as exc:
            self.acks_refused += 1
            log.warning("sync: refused an ack (%s); nothing changed", exc.reason)
            if self._may_audit_refusal():
                asyncio.ensure_future(self._audit_refused_ack(exc))
            return
        self.uploader.on_ack(payload)

    def _may_audit_refusal(self) -> bool:
        # a flood of forged acks must not fill the audit log: the count still goes to telemetry
        now = asyncio.get_running_loop().time()
        while self._refused_audited and now - self._refused_audited[0] > REFUSED_ACK_WINDOW_S:
            self._refused_audited.popleft()
        if len(self._refused_audited) >= REFUSED_ACK_AUDITS:
            return False
        self._refused_audited.append(now)
        return True

    async def _audit_refused_ack(self, refusal: AckRefused) -> None:
        detail = {"reason": refusal.reason[:200], "transaction_id": refusal.transaction_id,
                  "refused_so_far": self.acks_refused}
        try:
            await self.store.audit("network", "ack_refused", detail)
        except StoreError:
            log.exception("sync: could not audit a refused ack")

    def problems(self) -> list[str]:
        """What is wrong with the link to central, one sentence each (health, pages)."""
        found = []
        if self.acks.signatures_required and not self.acks.keys:
            found.append("no central key configured: central's acks cannot be verified and "
                         "no booking is marked delivered")
        if self.acks_refused:
            found.append(f"{self.acks_refused} ack(s) refused: unsigned, forged or meant for "
                         "another station (see the audit log)")
        taken = self.link.takeover_problem
        if taken:
            found.append(taken)
        return found

    # ---- commands -------------------------------------------------------------------------

    async def _command_loop(self) -> None:
        await self._recall_nonces()
        while True:
            payload, properties = await self._commands.get()
            try:
                await self._handle_command(payload, properties)
            except Exception:  # one bad command must not end the runner; logged
                log.exception("sync: command handling failed")

    async def _recall_nonces(self) -> None:
        """Seed the gate with the signed commands audited before a restart (replay guard)."""
        since = datetime.now(UTC) - timedelta(seconds=self.gate.nonce_horizon_s)
        try:
            used = await self.store.command_nonces(since)
        except StoreError:
            log.exception("sync: could not read used command nonces from the audit log")
            return
        self.gate.remember((nonce, at.timestamp()) for nonce, at in used)
        if used:
            log.info("sync: %d used command nonce(s) recalled from the audit log", len(used))

    async def _handle_command(self, payload: bytes, properties: Any) -> None:
        reply_to = getattr(properties, "ResponseTopic", None)
        correlation = getattr(properties, "CorrelationData", None)
        can_reply = reply_topic_allowed(reply_to, self.topics.base)
        command: Command | None = None
        try:
            command = self.gate.admit(payload)
            if not can_reply:
                raise CommandRefused(
                    f"a command needs a ResponseTopic under {self.topics.base}/reply/",
                    name=command.name)
            result = await self._run(command)
        except CommandRefused as exc:
            self.ignored += 1
            name = exc.name or (command.name if command else "")
            log.warning("sync: refused command %s: %s", name or "(unnamed)", exc.reason)
            await self._audit(name, "refused", exc.reason, command)
            body: dict[str, Any] = {"ok": False, "command": name, "error": exc.reason}
        else:
            log.info("sync: ran command %s", command.name)
            await self._audit(command.name, "done", "", command)
            body = {"ok": True, "command": command.name, "result": result}
        if can_reply:
            assert reply_to is not None
            props = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                props.CorrelationData = bytes(correlation)
            answer = telemetry.encode({"v": 1, "station_id": self.station_id,
                                       "at": utcnow(), **body})
            try:
                await self.link.publish(reply_to, answer, properties=props)
            except (NotConnected, SyncError) as exc:
                log.warning("sync: could not answer a command: %s", exc)

    async def _audit(self, name: str, outcome: str, reason: str, command: Command | None) -> None:
        detail: dict[str, Any] = {"command": name or "(invalid)", "outcome": outcome}
        if reason:
            detail["reason"] = reason[:200]
        if command is not None:
            detail.update(args=command.args, signed=command.signed, nonce=command.nonce)
        try:
            await self.store.audit("central", "remote_command", detail)
        except StoreError:
            log.exception("sync: could not audit a remote command")

    async def _run(self, command: Command) -> dict[str, Any]:
        name = command.name
        if name == "ping":
            return {"pong": True, "software": __version__,
                    "connected_since": self.link.counters.connected_since}
        if name == "diagnostics":
            return await asyncio.to_thread(self.diagnostics)
        if name == "sync_now":
            due = await self.store.write(_make_due_now)
            self.uploader.wake()
            return {"made_due": due}
        if name == "pause":
            self.uploader.pause()
            return {"paused": True}
        if name == "resume":
            self.uploader.resume()
            return {"paused": False}
        if name == "throttle":
            self.uploader.throttle(command.args["rate_per_s"])
            return {"rate_per_s": self.uploader.rate_per_s}
        raise CommandRefused(f"no handler for {name!r}", name=name)  # allow-list and code disagree

    def diagnostics(self) -> dict[str, Any]:
        """Sync figures plus the station's own (redacted) diagnostics; no personal data."""
        c = self.link.counters
        station = self.hooks.diagnostics()
        return {
            "station": station,
            "link": {"connected": self.link.connected, "connects": c.connects,
                     "disconnects": c.disconnects, "published": c.published,
                     "received": c.received, "tls_failures": c.tls_failures,
                     "clock_problem": c.clock_problem, "last_error": c.last_error[:200],
                     "session_taken_over": c.taken_over},
            "uploads": {"paused": self.uploader.paused, "rate_per_s": self.uploader.rate_per_s,
                        "inflight": self.uploader.inflight, "delivered": self.uploader.delivered},
            "ignored_messages": self.ignored,
            "acks_refused": self.acks_refused,
            "central_keys": list(self.acks.keys.ids),
        }


def _make_due_now(conn: sqlite3.Connection) -> int:
    """Queued transactions waiting out a backoff become due now (the sync_now command)."""
    now = utcnow()
    cur = conn.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ?",
        (now, now),
    )
    return cur.rowcount
