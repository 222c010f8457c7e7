"""Fixtures for the embedded broker tests: the broker on its own loop thread, a real Mosquitto,
and a thin wrapper around the real paho-mqtt 2.x client (MQTT 5, callback API version 2)."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.devbroker import EmbeddedBroker

WAIT = 5.0  # seconds to wait for something that should happen; only reached on failure
QUIET = 0.3  # seconds to watch for something that should not happen
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class ThreadedBroker:
    """An EmbeddedBroker on a loop in a background thread, as paho's blocking API needs."""

    def __init__(self, **options) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.broker = EmbeddedBroker(**options)
        self.port = self.call(self.broker.start())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def close(self) -> None:
        self.call(self.broker.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class PahoClient:
    """A paho-mqtt 2.x MQTT 5 client whose events land in thread-safe queues."""

    def __init__(self, port: int, client_id: str = "", *, clean_start: bool = True,
                 session_expiry: int | None = None, keepalive: int = 60,
                 protocol: int = mqtt.MQTTv5) -> None:
        self.port = port
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, reconnect_on_failure=False)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connacks: queue.Queue[tuple] = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self._subacks: dict[int, list] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.put(rc)

    def _on_connect(self, _c, _u, flags, reason_code, properties) -> None:
        self.connacks.put((flags, reason_code, properties))

    def _on_subscribe(self, _c, _u, mid, reason_codes, _p) -> None:
        with self._cond:
            self._subacks[mid] = reason_codes
            self._cond.notify_all()

    def will(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.will_set(topic, payload, qos=qos, retain=retain)

    def connect(self, expect_success: bool = True):
        """Connect and wait for CONNACK; returns (flags, reason_code, properties)."""
        props = None
        if self.session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry
        kwargs = {"clean_start": self.clean_start, "properties": props}
        if self.client.protocol != mqtt.MQTTv5:
            kwargs = {}
        self.client.connect("127.0.0.1", self.port, keepalive=self.keepalive, **kwargs)
        self.client.loop_start()
        connack = self.connacks.get(timeout=WAIT)
        if expect_success:
            assert not connack[1].is_failure, f"CONNACK refused: {connack[1]}"
        return connack

    def subscribe(self, topic: str, qos: int = 1, **options) -> list:
        """Subscribe and wait for SUBACK; returns its reason codes."""
        opts = mqtt.SubscribeOptions(qos=qos, **options)
        result, mid = self.client.subscribe(topic, options=opts)
        assert result == mqtt.MQTT_ERR_SUCCESS
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._subacks, WAIT), "no SUBACK"
            return self._subacks.pop(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def expect(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def expect_nothing(self) -> None:
        with pytest.raises(queue.Empty):
            msg = self.messages.get(timeout=QUIET)
            pytest.fail(f"unexpected message on {msg.topic}")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def kill(self) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT, as a crashed station would."""
        self.client.socket().shutdown(socket.SHUT_RDWR)
        self.disconnects.get(timeout=WAIT)
        self.client.loop_stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_embedded(caplog):
    """Factory: start an embedded broker with options; fails the test on logged errors."""
    started: list[ThreadedBroker] = []

    def start(**options) -> ThreadedBroker:
        started.append(ThreadedBroker(**options))
        return started[-1]

    with caplog.at_level(logging.WARNING, logger="appliance.devbroker"):
        yield start
    for runner in started:
        runner.close()
    errors = [r for r in caplog.records
              if r.name.startswith("appliance.devbroker") and r.levelno >= logging.ERROR]
    assert not errors, f"the broker logged errors: {[r.getMessage() for r in errors]}"


@pytest.fixture
def embedded_port(start_embedded) -> int:
    return start_embedded().port


@pytest.fixture
def mosquitto_port(tmp_path) -> int:
    """A real Mosquitto on a free loopback port, started for this test."""
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"mosquitto binary not installed ({MOSQUITTO})")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mosquitto did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.02)
    yield port
    proc.terminate()
    proc.wait(WAIT)


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_port(request) -> int:
    """The same interop test against the embedded broker and against a real Mosquitto."""
    return request.getfixturevalue(f"{request.param}_port")


@pytest.fixture
def paho(request):
    """Factory for connected-on-demand paho clients, all disconnected after the test."""
    clients: list[PahoClient] = []

    def make(port: int, client_id: str = "", **options) -> PahoClient:
        clients.append(PahoClient(port, client_id, **options))
        return clients[-1]

    yield make
    for c in clients:
        c.client.disconnect()
        c.client.loop_stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"bst-test/{uuid.uuid4().hex[:8]}"
