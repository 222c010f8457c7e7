"""What central operations know about each station, from the telemetry tree alone.

A :class:`FleetWatch` subscribes to ``<prefix>-telemetry/+/+`` (the monitoring user's whole
grant: it never sees a booking) and keeps, per station, the retained status, the latest health,
the recent alerts and a bounded history of the figures the fleet page charts. The metrics
exporter and the fleet page both read :meth:`FleetWatch.snapshot`; nothing here is persisted.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from appliance.sync.protocol import (
    MAX_CONTROL_BYTES,
    MalformedMessage,
    parse_telemetry_topic,
    telemetry_root,
)

log = logging.getLogger(__name__)

HISTORY = 720  # health readings kept per station: six hours at the default 30 s interval
ALERTS_KEPT = 20
SCANNER_STATES = ("starting", "ready", "busy", "disconnected", "stopped", "unknown")


@dataclass(frozen=True, slots=True)
class Reading:
    """One health message, reduced to what the charts draw."""

    at: float
    queue_depth: int
    oldest_unsent_age_s: float | None
    drain_per_s: float
    scanner_state: str


@dataclass(slots=True)
class StationView:
    """One station as operations see it: status, latest health, recent alerts, history."""

    station_id: str
    state: str = "unknown"  # online / offline (from the retained status) / unknown
    clean_stop: bool = False
    last_seen: float = 0.0  # Unix time of the last message of any kind
    birth: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ALERTS_KEPT))
    history: deque[Reading] = field(default_factory=lambda: deque(maxlen=HISTORY))
    scanner_events: deque[tuple[float, str]] = field(
        default_factory=lambda: deque(maxlen=HISTORY))

    def copy(self) -> StationView:
        """A copy the caller may read without the watch's lock."""
        return StationView(self.station_id, self.state, self.clean_stop, self.last_seen,
                           dict(self.birth), dict(self.health), deque(self.alerts, ALERTS_KEPT),
                           deque(self.history, HISTORY), deque(self.scanner_events, HISTORY))

    @property
    def scanner_state(self) -> str:
        """The scanner's last reported state, folded into the bounded set."""
        state = str(self.health.get("scanner_state", "unknown"))
        return state if state in SCANNER_STATES else "unknown"

    @property
    def clock_trusted(self) -> bool:
        """Synchronised and no clock problem seen through TLS."""
        return (self.health.get("clock") == "synchronised"
                and not self.health.get("clock_problem"))


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


class FleetWatch:
    """Subscribes to every station's telemetry and keeps each station's view."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, prefix: str = "bst",
                 client_id: str = "central-fleet", tls: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None,
                 max_stations: int = 10_000) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.max_stations = max_stations
        self.messages = 0
        self.malformed = 0
        self._stations: dict[str, StationView] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if tls is not None:
            client.tls_set_context(tls)
        if username:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self._connected.clear()
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 5)
        self._client = client

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; returns once subscribed."""
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self._client.loop_stop()
            raise ConnectionError(f"fleet watch cannot reach {self.host}:{self.port}")

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self) -> list[StationView]:
        """Every station's view, copied."""
        with self._lock:
            return [v.copy() for v in self._stations.values()]

    def station(self, station_id: str) -> StationView | None:
        """One station's view, copied; None when never heard of."""
        with self._lock:
            view = self._stations.get(station_id)
            return view.copy() if view else None

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                    _p: Any) -> None:
        if reason.is_failure:
            log.warning("fleet: broker refused: %s", reason)
            return
        client.subscribe(f"{telemetry_root(self.prefix)}/+/+", qos=1)
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.record(msg.topic, bytes(msg.payload))
        except MalformedMessage as exc:
            self.malformed += 1
            log.warning("fleet: ignored malformed telemetry: %s", exc)
        except Exception:  # one station's odd message never stops the watch
            self.malformed += 1
            log.exception("fleet: failed to handle a telemetry message")

    def record(self, topic: str, payload: bytes, *, now: float | None = None) -> None:
        """Fold one telemetry message into its station's view."""
        station_id, kind = parse_telemetry_topic(topic, self.prefix)
        if len(payload) > MAX_CONTROL_BYTES:
            raise MalformedMessage("telemetry message too large")
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise MalformedMessage("telemetry is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedMessage("telemetry must be a JSON object")
        now = time.time() if now is None else now
        with self._lock:
            view = self._stations.get(station_id)
            if view is None:
                if len(self._stations) >= self.max_stations:
                    raise MalformedMessage("more stations than the watch keeps")
                view = self._stations[station_id] = StationView(station_id)
            self.messages += 1
            view.last_seen = now
            if kind == "status":
                self._status(view, body)
            elif kind == "health":
                self._health(view, body, now)
            else:
                view.alerts.append({"at": now, "kind": str(body.get("kind", ""))[:40],
                                    "severity": str(body.get("severity", ""))[:20],
                                    "message": str(body.get("message", ""))[:200]})

    @staticmethod
    def _status(view: StationView, body: dict[str, Any]) -> None:
        state = body.get("state")
        if state == "online":
            view.state, view.clean_stop = "online", False
            view.birth = {k: body.get(k) for k in ("software", "protocol", "models",
                                                   "config_hash", "manifest_version")}
        elif state == "offline":
            view.state, view.clean_stop = "offline", bool(body.get("clean"))
        else:
            raise MalformedMessage("status is neither online nor offline")

    @staticmethod
    def _health(view: StationView, body: dict[str, Any], now: float) -> None:
        before = view.scanner_state if view.health else None
        view.health = body
        if view.state == "unknown":
            view.state = "online"  # health only comes from a connected station
        age = body.get("oldest_unsent_age_s")
        view.history.append(Reading(
            now, int(_number(body.get("queue_depth"))),
            _number(age) if age is not None else None,
            _number(body.get("drain_per_s")), view.scanner_state))
        if view.scanner_state != before:
            view.scanner_events.append((now, view.scanner_state))


GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
BACKLOG_AMBER_S = 3600.0
DISK_AMBER_RATIO = 0.10


def assess(view: StationView, now: float, stale_after_s: float) -> tuple[str, list[str]]:
    """The station's colour and the reasons for it, worst first (empty when all is well)."""
    if view.state == "offline":
        if view.clean_stop:
            return GREY, ["stopped on purpose"]
        return RED, ["offline: the broker published its will"]
    red: list[str] = []
    amber: list[str] = []
    if view.last_seen and now - view.last_seen > stale_after_s:
        red.append(f"no telemetry for {_span(now - view.last_seen)}")
    h = view.health
    if not h:
        return (RED, red) if red else (GREY, ["no health message yet"])
    if view.scanner_state == "disconnected":
        red.append("scanner disconnected")
    elif view.scanner_state in ("stopped", "unknown"):
        amber.append(f"scanner {view.scanner_state}")
    if not view.clock_trusted:
        amber.append("clock untrusted")
    age = h.get("oldest_unsent_age_s")
    if isinstance(age, int | float) and age > BACKLOG_AMBER_S:
        amber.append(f"oldest unsent booking {_span(age)} old")
    free, total = _number(h.get("disk_free_mb")), _number(h.get("disk_total_mb"))
    if total > 0 and free / total < DISK_AMBER_RATIO:
        amber.append(f"disk {100 * free / total:.0f} % free")
    failures = (_number(h.get("command_signature_failures"))
                + _number(h.get("receipt_signature_failures")))
    if failures:
        amber.append(f"{failures:.0f} signature failures")
    if h.get("uploads_paused"):
        amber.append("uploads paused")
    if red:
        return RED, red + amber
    return (AMBER, amber) if amber else (GREEN, [])


def _span(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
