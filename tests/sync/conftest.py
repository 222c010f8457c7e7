from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.config import MqttSection
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.store import Store
from appliance.sync.link import MqttLink
from appliance.sync.protocol import Topics
from appliance.sync.upload import Uploader
from central.receiver import CentralReceiver


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
