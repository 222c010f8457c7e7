from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.config import StationConfig
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.store import Store
from appliance.sync import telemetry
from appliance.sync.config import MqttSection, SharingManifest, TlsSection
from appliance.sync.link import MqttLink
from appliance.sync.protocol import Topics
from appliance.sync.service import StationHooks, SyncService
from appliance.sync.upload import Uploader
from appliance.system.config import StationSection
from appliance.system.health import age_seconds, cpu_temperature_c
from central.commands import load_private_key, write_keypair
from central.receiver import CentralReceiver, Destination


@dataclass
class SyncRig:
    store: Store
    link: MqttLink
    uploader: Uploader
    receiver: CentralReceiver
    topics: Topics
    task: asyncio.Task

    async def wait_all_stored(self, txids: list[str], timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            states = [self.store.outbox_state(t) for t in txids]
            if all(s == "stored" for s in states):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not all stored: {states}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def sync_rig(tmp_path: Path, mosquitto):
    rigs = []

    async def make(station_id: str = "st-1", **mqtt_overrides) -> SyncRig:
        store = Store(tmp_path / f"{station_id}.db", BlobCipher(new_key()))
        store.open()
        cfg = MqttSection(host=mosquitto.host, port=mosquitto.port, reconnect_min_s=0.1,
                          reconnect_max_s=1.0, ack_timeout_s=3.0, **mqtt_overrides)
        topics = Topics(cfg.topic_prefix, station_id)
        receiver = CentralReceiver(tmp_path / "central", host=mosquitto.host,
                                   port=mosquitto.port, prefix=cfg.topic_prefix,
                                   client_id=f"central-{station_id}")
        await asyncio.to_thread(receiver.start)
        holder: dict = {}

        def on_message(topic, payload, _props):
            if topic == topics.ack:
                holder["uploader"].on_ack(payload)

        link = MqttLink(cfg, f"station-{station_id}", subscriptions=[topics.ack],
                        on_message=on_message,
                        on_connection=lambda up: up and holder["uploader"].wake())
        uploader = Uploader(store, link, topics, cfg)
        holder["uploader"] = uploader
        link.start(asyncio.get_running_loop())
        task = asyncio.create_task(uploader.run())
        rig = SyncRig(store, link, uploader, receiver, topics, task)
        rigs.append(rig)
        deadline = asyncio.get_running_loop().time() + 10
        while not link.connected:
            assert asyncio.get_running_loop().time() < deadline, link.counters.last_error
            await asyncio.sleep(0.05)
        return rig

    yield make
    for rig in rigs:
        await rig.uploader.stop()
        rig.task.cancel()
        await asyncio.gather(rig.task, return_exceptions=True)
        await asyncio.to_thread(rig.link.stop)
        await asyncio.to_thread(rig.receiver.stop)
        rig.store.close()




# ---- the whole sync service, as the station runs it ----------------------------------------





def store_health(store: Store, station_id: str) -> telemetry.Health:
    h = store.health()
    return telemetry.Health(
        station_id=station_id, queue_depth=h.queue_depth,
        oldest_unsent_age_s=age_seconds(h.oldest_unsent_at),
        disk_free_mb=h.disk_free_mb, scanner_state="ready", audit_head=h.audit_head,
        audit_entries=h.audit_entries, clock="synchronised", link_connects=0,
        cpu_temperature_c=cpu_temperature_c(), alerts=[], disk_total_mb=h.disk_total_mb,
        bookings_today=h.bookings_today, nfiq2_median_today=h.nfiq2_median_today,
    )


@dataclass
class CentralSigning:
    """Central's signing key and the public key file the station is configured with."""

    key: Ed25519PrivateKey
    public: Path
    private: Path


@pytest.fixture
def central_signing(tmp_path: Path) -> CentralSigning:
    """One central key pair per test: the receiver signs acks, operators sign commands."""
    folder = tmp_path / "central-keys"
    folder.mkdir()
    write_keypair(folder / "central.key", folder / "central.pub")
    return CentralSigning(load_private_key(folder / "central.key"), folder / "central.pub",
                          folder / "central.key")


@dataclass
class ServiceRig:
    service: SyncService
    store: Store
    receiver: CentralReceiver | None
    events: list[dict]

    @property
    def topics(self) -> Topics:
        return self.service.topics

    async def wait_connected(self, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.service.link.connected:
            assert asyncio.get_running_loop().time() < deadline, \
                self.service.link.counters.last_error
            await asyncio.sleep(0.05)

    async def wait_all_stored(self, txids: list[str], timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            states = await asyncio.to_thread(
                lambda: [self.store.outbox_state(t) for t in txids])
            if all(s == "stored" for s in states):
                return
            if asyncio.get_running_loop().time() > deadline:
                counts: dict[str, int] = {}
                for s in states:
                    counts[str(s)] = counts.get(str(s), 0) + 1
                raise AssertionError(f"not all stored: {counts}; link: "
                                     f"{self.service.link.counters}")
            await asyncio.sleep(0.1)

    def assert_exactly_once(self, txids: list[str], payloads: list[bytes] | None = None) -> None:
        """The invariant: central holds each booking once, nothing lost, the outbox agrees."""
        assert self.receiver is not None
        held = self.receiver.store.deliveries()
        assert set(held) == set(txids), "central holds other transactions than were queued"
        assert self.receiver.store.count() == len(txids)
        assert all(self.store.outbox_state(t) == "stored" for t in txids)
        assert self.store.health().queue_depth == 0
        if payloads is not None:
            for txid, payload in zip(txids, payloads, strict=True):
                assert self.receiver.store.read(self.service.station_id, txid) == payload


def station_config(tmp_path: Path, station_id: str, host: str, port: int, *,
                   tls: TlsSection | None = None, **mqtt) -> StationConfig:
    params = dict(host=host, port=port, reconnect_min_s=0.1, reconnect_max_s=0.5,
                  ack_timeout_s=2.0, keepalive_s=5, tls=tls)
    params.update(mqtt)
    return StationConfig(station=StationSection(station_id=station_id, data_dir=tmp_path),
                         mqtt=MqttSection(**params))


@pytest.fixture
async def service_rig(tmp_path: Path, central_signing: CentralSigning):
    """Build SyncServices (and reference receivers) against a given broker address.

    As in production, central signs its acks and the station holds central's public key;
    ``signed=False`` builds a test bench that takes unsigned acks and commands instead.
    """
    made: list[ServiceRig] = []

    async def make(host: str, port: int, *, station_id: str = "st-1", signed: bool = True,
                   database: str | None = None,
                   sharing: SharingManifest | None = None, tls: TlsSection | None = None,
                   receiver: bool = True, receiver_port: int | None = None,
                   receiver_tls=None, destinations: list[Destination] | None = None,
                   receiver_cls: type[CentralReceiver] = CentralReceiver,
                   connect: bool = True, hooks: StationHooks | None = None,
                   **mqtt) -> ServiceRig:
        store = Store(tmp_path / f"{database or station_id}.db", BlobCipher(new_key()))
        store.open()
        if signed:
            mqtt.setdefault("central_keys", (central_signing.public,))
        else:
            mqtt.update(allow_unsigned_acks=True, allow_unsigned_commands=True)
        config = station_config(tmp_path, station_id, host, port, tls=tls, **mqtt)
        events: list[dict] = []
        hooks = hooks or StationHooks(
            health=lambda: store_health(store, station_id),
            capabilities=lambda: {"ppi": 500, "modes": ["flat", "rolled"]},
            scanner=lambda: {"vendor": "Emulated", "model": "EMU-1"},
            events=events.append,
            diagnostics=lambda: {"scanner": {"state": "ready"}},
            clock_trusted=lambda: True,
            models=lambda: {"minutiae": "test-1"},
        )
        central = None
        if receiver:
            central = receiver_cls(tmp_path / "central", host=host, port=receiver_port or port,
                                   prefix=config.mqtt.topic_prefix,
                                   client_id=f"central-{station_id}", tls=receiver_tls,
                                   destinations=destinations,
                                   signing_key=central_signing.key if signed else None)
            await asyncio.to_thread(central.start)
        service = SyncService(station_id, config.mqtt, store, hooks, sharing=sharing,
                              config_hash=config.digest())
        service.start(asyncio.get_running_loop())
        rig = ServiceRig(service, store, central, events)
        made.append(rig)
        if connect:
            await rig.wait_connected()
        return rig

    yield make
    for rig in made:
        await rig.service.stop()
        if rig.receiver is not None:
            await asyncio.to_thread(rig.receiver.stop)
        rig.store.close()


@dataclass
class Captured:
    topic: str
    payload: bytes
    retain: bool
    properties: Any


class Capture:
    """A plain MQTT 5 client that records everything on a filter (the test's eyes on the bus)."""

    def __init__(self, host: str, port: int, topic: str = "bst/#", *, tls=None) -> None:
        self.messages: list[Captured] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("capture client did not subscribe")

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append(Captured(msg.topic, bytes(msg.payload), bool(msg.retain),
                                          msg.properties))

    def on(self, suffix: str) -> list[Captured]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def json_on(self, suffix: str) -> list[dict]:
        return [json.loads(m.payload) for m in self.on(suffix)]

    async def wait_for(self, pred: Callable[[Captured], bool], timeout: float = 10) -> Captured:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with self._lock:
                for m in self.messages:
                    if pred(m):
                        return m
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("expected message never arrived")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def capture_factory():
    made: list[Capture] = []

    def make(host: str, port: int, topic: str = "bst/#", **kw) -> Capture:
        cap = Capture(host, port, topic, **kw)
        made.append(cap)
        return cap

    yield make
    for cap in made:
        cap.close()


def commit_many(store: Store, count: int, size: int = 2000, prefix: str = "B"):
    """Queue ``count`` bookings with random transactions; returns (txids, payloads)."""
    import os

    from tests.store.conftest import make_booking

    async def run():
        txids, payloads = [], []
        for n in range(count):
            payload = os.urandom(size)
            txids.append(await store.commit_booking(make_booking(f"{prefix}{n}", prints=1),
                                                    payload))
            payloads.append(payload)
        return txids, payloads

    return run()
