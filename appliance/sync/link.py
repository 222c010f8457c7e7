"""The MQTT 5 link: paho-mqtt in its own network thread, events handed to asyncio.

Only the network thread touches the paho client: coroutines queue publish requests and await
the broker's PUBACK; paho's callbacks only pass events to the loop with
``call_soon_threadsafe``. The link keeps a persistent session (clean start off, session expiry),
and reconnects with full-jitter exponential backoff so a fleet that lost its broker does not come
back all in the same second.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from appliance.errors import SyncError
from appliance.handoff import settle
from appliance.sync.config import MqttSection
from appliance.sync.tls import TlsFailure, TlsFailureKind, classify

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.5  # longest sleep of the network thread; publishes and stop() wake it at once
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with our id
TAKEOVER_MAX_S = 3600.0
RECENT_LOSS_S = 60.0  # a twin's birth seen this soon after the broker dropped us means takeover
MessageHandler = Callable[[str, bytes, Any], None]
FailureHandler = Callable[[TlsFailure], None]


class NotConnected(SyncError):
    """The broker is not reachable right now; try again after reconnecting."""


@dataclass(slots=True)
class _Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties | None
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[None] | None


@dataclass(slots=True)
class LinkCounters:
    """Link figures for telemetry and the admin page."""

    connects: int = 0
    disconnects: int = 0
    published: int = 0
    received: int = 0
    last_error: str = ""
    connected_since: float | None = None
    reasons: list[str] = field(default_factory=list)
    tls_failures: int = 0
    retained_ignored: int = 0
    clock_problem: str = ""  # set while TLS failures point at this station's clock
    taken_over: int = 0  # times another client connected with this station's client id
    taken_over_by: str = ""  # the sentence for health and log while it matters
    taken_over_until: float = 0.0  # monotonic time the sentence stops mattering


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(high, low * 2**attempt)] plus low/2."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return low / 2 + rng.uniform(0, ceiling)


class MqttLink:
    """One MQTT 5 connection owned by one thread."""

    def __init__(
        self,
        config: MqttSection,
        client_id: str,
        *,
        subscriptions: list[str],
        on_message: MessageHandler,
        on_connection: Callable[[bool], None] | None = None,
        will: tuple[str, bytes] | None = None,
        tls_context: ssl.SSLContext | None = None,
        password: str | None = None,
        on_failure: FailureHandler | None = None,
        ignore_retained: bool = False,
        retained_wanted: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        self.counters = LinkCounters()
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._on_connection = on_connection
        self._on_failure = on_failure
        self._ignore_retained = ignore_retained
        self._retained_wanted = retained_wanted
        self._tls = tls_context is not None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests: queue.Queue[_Publish] = queue.Queue()
        self._pending: dict[int, _Publish] = {}
        self._stop = threading.Event()
        self._connected = False
        self._rng = random.Random()
        self._attempt = 0
        self._next_attempt = 0.0
        self._client_id = client_id
        self._takeovers = 0  # consecutive takeovers: the backoff doubles with each
        self._connected_at = 0.0
        self._lost_at = -RECENT_LOSS_S  # when the broker (not we) last ended a connection
        self._step_aside: str = ""  # set by the loop: the network thread steps aside
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        # the network thread sleeps in select(); a byte here wakes it for a queued publish, so
        # a publish goes out now instead of after the select timeout (which capped the drain)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.heartbeat = time.monotonic()

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        client.max_inflight_messages_set(max(20, config.window * 8))
        client.max_queued_messages_set(0)
        if tls_context is not None:
            client.tls_set_context(tls_context)
        if config.username:
            client.username_pw_set(config.username, password)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_message = self._cb_message
        client.on_publish = self._cb_publish
        client.on_socket_open = _no_delay
        self._client = client

    # ---- asyncio side ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the broker has accepted our connection."""
        return self._connected

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the network thread; it connects in the background."""
        self._loop = loop
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (the will is not sent) and end the thread."""
        self._stop.set()
        self._wake()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1) or the write (QoS 0)."""
        if not self._connected:
            raise NotConnected("not connected to the broker")
        loop = asyncio.get_running_loop()
        req = _Publish(topic, payload, qos, retain, properties, loop, loop.create_future())
        self._requests.put(req)
        self._wake()
        assert req.future is not None
        await req.future

    def publish_nowait(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                       properties: Properties | None = None) -> None:
        """Queue a publish without waiting (telemetry); dropped if not connected."""
        if self._connected:
            self._requests.put(_Publish(topic, payload, qos, retain, properties, None, None))
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (buffer full) or closing

    # ---- network thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            if not self._connected and time.monotonic() >= self._next_attempt:
                if not self._try_connect():
                    delay = backoff_delay(self._attempt, self.config.reconnect_min_s,
                                          self.config.reconnect_max_s, self._rng)
                    self._attempt += 1
                    self._next_attempt = max(self._next_attempt, time.monotonic() + delay)
            if self._step_aside:
                self._stepping_aside()
            self._drain_requests()
            if self._client.socket() is not None:
                rc = self._service_socket(IDLE_WAIT_S)
                if rc != mqtt.MQTT_ERR_SUCCESS and self._connected:
                    self._lost(f"network loop: {mqtt.error_string(rc)}")
                    self._next_attempt = time.monotonic() + backoff_delay(
                        0, self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng)
            else:
                self._wait_for_wake(min(IDLE_WAIT_S,
                                        max(0.01, self._next_attempt - time.monotonic())))
        try:
            if self._connected:
                self._client.disconnect()
                self._client.loop(timeout=0.2)
        except OSError:
            pass
        self._fail_pending("link stopped")
        self._wake_r.close()
        self._wake_w.close()

    def _service_socket(self, timeout: float) -> mqtt.MQTTErrorCode:
        """One round of paho's external-loop API: read, write, keep-alive; woken by publishes."""
        sock = self._client.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0  # TLS-buffered bytes
        try:
            events = _poll({sock.fileno(): _IN | (select.POLLOUT if self._client.want_write()
                                                  else 0),
                            self._wake_r.fileno(): _IN}, 0 if pending else timeout)
        except (OSError, ValueError, TypeError):
            return mqtt.MQTT_ERR_CONN_LOST
        if events.get(self._wake_r.fileno(), 0) & _IN:
            self._clear_wake()
        sock_events = events.get(sock.fileno(), 0)
        if sock_events & (_IN | _GONE) or pending:
            rc = self._client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return rc
        if sock_events & select.POLLOUT and self._client.socket() is not None:
            rc = self._client.loop_write()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return rc
        return self._client.loop_misc()

    def _wait_for_wake(self, timeout: float) -> None:
        try:
            events = _poll({self._wake_r.fileno(): _IN}, timeout)
        except (OSError, ValueError):
            return
        if events:
            self._clear_wake()

    def _clear_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _try_connect(self) -> bool:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        try:
            self._client.connect(
                self.config.host,
                self.config.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            failure = classify(exc)
            self.counters.last_error = f"connect: {exc}"
            if failure is not None:
                self._tls_failed(failure)
            log.warning("mqtt: cannot connect to %s:%s: %s", self.config.host, self.config.port,
                        failure.detail if failure else exc)
            return False
        # CONNACK arrives through loop(); wait for it briefly
        deadline = time.monotonic() + 10
        while not self._connected and time.monotonic() < deadline and not self._stop.is_set():
            rc = self._client.loop(timeout=0.05)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                # with TLS 1.3 the broker refuses a client certificate after our side of the
                # handshake is done: the refusal shows up as the connection closing here
                why = f"connection closed before CONNACK: {mqtt.error_string(rc)}"
                self.counters.last_error = why
                if self._tls:
                    self._tls_failed(TlsFailure(TlsFailureKind.REFUSED, why))
                break
        if self._connected and self.counters.clock_problem:
            self.counters.clock_problem = ""
        return self._connected

    def _tls_failed(self, failure: TlsFailure) -> None:
        self.counters.tls_failures += 1
        if failure.kind is TlsFailureKind.CLOCK:
            self.counters.clock_problem = failure.detail
        if self._on_failure is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_failure, failure)

    def _drain_requests(self) -> None:
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                return
            if not self._connected:
                self._settle(req, NotConnected("connection lost before publishing"))
                continue
            info = self._client.publish(req.topic, req.payload, qos=req.qos, retain=req.retain,
                                        properties=req.properties)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._settle(req, NotConnected(f"publish failed: {mqtt.error_string(info.rc)}"))
                continue
            self.counters.published += 1
            if req.qos == 0:
                self._settle(req, None)
            else:
                self._pending[info.mid] = req

    def _settle(self, req: _Publish, error: BaseException | None) -> None:
        if req.loop is None or req.future is None:
            return
        req.loop.call_soon_threadsafe(settle, req.future, None, error)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for req in pending.values():
            self._settle(req, NotConnected(why))

    def _lost(self, why: str) -> None:
        was = self._connected
        self._connected = False
        self.counters.last_error = why
        self.counters.connected_since = None
        self._fail_pending(why)
        if not was:
            return
        if self._stop.is_set():  # our own clean disconnect at stop(): nothing was lost
            log.info("mqtt: disconnected from the broker (the link is stopping)")
        else:
            self.counters.disconnects += 1
            log.warning("mqtt: connection lost: %s", why)
            now = time.monotonic()
            if now - self._connected_at > 2 * self.config.takeover_backoff_s:
                self._takeovers = 0  # a session that held: any takeover backoff starts over
            if not self._step_aside:
                self._lost_at = now
        self._notify(False)

    def twin_seen(self, evidence: str) -> bool:
        """The service saw another instance of this station online (its birth message).

        Called on the event loop. Counts only when the broker dropped us moments ago, so a
        stale retained birth left by a crash does not keep a lone station off the broker.
        Returns True when the link steps aside.
        """
        if time.monotonic() - self._lost_at > RECENT_LOSS_S or self._step_aside:
            return False
        self._step_aside = evidence
        self._wake()
        return True

    def _notify(self, up: bool) -> None:
        if self._on_connection is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_connection, up)

    # paho callbacks (network thread)

    def _cb_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason: ReasonCode, _props: Any) -> None:
        if reason.is_failure:
            self.counters.last_error = f"broker refused: {reason}"
            log.warning("mqtt: broker refused the connection: %s", reason)
            return
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self._connected = True
        self._attempt = 0
        self._connected_at = time.monotonic()
        self.counters.connects += 1
        self.counters.connected_since = time.time()
        log.info("mqtt: connected to %s:%s", self.config.host, self.config.port)
        self._notify(True)

    def _cb_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason: ReasonCode, _props: Any) -> None:
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
            self._taken_over(named_by_broker=True)
        self._lost(f"disconnected: {reason}")

    def _stepping_aside(self) -> None:
        if self._connected:
            self._taken_over(named_by_broker=False)
            try:
                self._client.disconnect()  # a clean DISCONNECT: the broker keeps our will
                self._client.loop(timeout=0.2)
            except OSError:
                pass
            self._lost("stepped aside for another client with this station's id")
        self._step_aside = ""

    def _taken_over(self, *, named_by_broker: bool) -> None:
        """Another client connected with our client id: step aside instead of fighting.

        Reconnecting at once would knock the other client off, which would do the same to us,
        about once a second, with neither side saying why.
        """
        now = time.monotonic()
        base = self.config.takeover_backoff_s
        self._takeovers += 1
        ceiling = min(TAKEOVER_MAX_S, base * 2 ** min(self._takeovers - 1, 16))
        delay = ceiling + self._rng.uniform(0, ceiling / 2)
        self._next_attempt = now + delay
        c = self.counters
        c.taken_over += 1
        how = ("the broker says another client connected" if named_by_broker else
               f"another station is online ({self._step_aside}) and connected")
        c.taken_over_by = (
            f"session taken over: {how} with this station's client id {self._client_id!r} "
            f"(a second station with the same station id?); reconnecting in {delay:.0f} s "
            "instead of fighting for the connection")
        c.taken_over_until = now + delay + 2 * base
        log.error("mqtt: %s", c.taken_over_by)

    @property
    def takeover_problem(self) -> str:
        """The takeover sentence while it matters (until a later connection has held)."""
        c = self.counters
        return c.taken_over_by if time.monotonic() < c.taken_over_until else ""

    def _cb_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.counters.received += 1
        if msg.retain and self._ignore_retained and msg.topic not in self._retained_wanted:
            # a retained ack or command is old news replayed by the broker at subscription
            self.counters.retained_ignored += 1
            log.warning("mqtt: ignored a retained message on %s", msg.topic[:120])
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                self._on_message, msg.topic, bytes(msg.payload), msg.properties
            )

    def _cb_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode,
                    _props: Any) -> None:
        req = self._pending.pop(mid, None)
        if req is None:
            return
        if reason.is_failure:
            self._settle(req, SyncError(f"broker refused publish: {reason}"))
        else:
            self._settle(req, None)


_IN = select.POLLIN | select.POLLPRI
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def _poll(interest: dict[int, int], timeout: float) -> dict[int, int]:
    """Wait up to ``timeout`` seconds for events on file descriptors: {fd: events}.

    poll(2), not select(2): select cannot watch a descriptor numbered 1024 or above
    (FD_SETSIZE) and raises, which a process with many connections or open files reaches.
    """
    poller = select.poll()
    for fd, mask in interest.items():
        poller.register(fd, mask)
    return dict(poller.poll(max(0.0, timeout) * 1000.0))


def _no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """Turn Nagle off on the broker connection.

    A small PUBACK or `end` otherwise waits for the peer's delayed ACK (40 ms on Linux), which
    capped the drain at a few transactions per second per window slot.
    """
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not a TCP socket (e.g. a websocket wrapper): nothing to tune
