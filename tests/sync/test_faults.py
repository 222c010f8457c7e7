"""Faults between station and central, each ending in the same invariant: every booking stored
at central exactly once by transaction id, none lost, and the station's outbox agrees."""

from __future__ import annotations

import asyncio
import json
import os

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.sync.protocol import Ack, AckStatus
from central.commands import CommandClient, command_body
from central.receiver import CentralReceiver
from tests.conftest import until
from tests.sync.chaos import ChaosProxy, random_budget
from tests.sync.conftest import commit_many


@pytest.mark.parametrize("seed", [1, 2])
async def test_connections_cut_at_random_points(mosquitto, service_rig, seed,
                                                loop_errors) -> None:
    proxy = ChaosProxy(mosquitto.host, mosquitto.port,
                       budget=random_budget(seed, 2_000, 150_000, cuts=10))
    port = await proxy.start()
    try:
        rig = await service_rig("127.0.0.1", port, receiver_port=mosquitto.port,
                                chunk_size=16 * 1024, window=3)
        sizes = [20_000 + 13_000 * n for n in range(10)]
        txids, payloads = [], []
        for n, size in enumerate(sizes):
            t, p = await commit_many(rig.store, 1, size=size, prefix=f"C{n}-")
            txids += t
            payloads += p
        rig.service.wake()
        await rig.wait_all_stored(txids, timeout=75)
        rig.assert_exactly_once(txids, payloads)
        assert proxy.cuts >= 5, "the proxy must really have cut connections"
        assert rig.service.link.counters.connects >= 5
    finally:
        await proxy.close()


async def test_broker_killed_and_restarted_mid_upload(mosquitto, service_rig,
                                                      loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, chunk_size=8 * 1024, window=2)
    txids, payloads = await commit_many(rig.store, 6, size=200_000)
    rig.service.wake()
    while rig.service.link.counters.published < 30:
        await asyncio.sleep(0.01)
    mosquitto.kill()  # SIGKILL: no goodbye to anyone; the broker keeps nothing (no persistence)
    await until(lambda: not rig.service.link.connected,
                what="the link noticing the broker is gone")
    mosquitto.start()
    await rig.wait_all_stored(txids, timeout=60)
    rig.assert_exactly_once(txids, payloads)


class LosesFirstAnswers(CentralReceiver):
    """A receiver whose first `stored` answer per transaction never reaches the station."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.lost: set[str] = set()

    def _answer(self, station: str, ack: Ack) -> None:
        if ack.status is AckStatus.STORED and ack.transaction_id not in self.lost:
            self.lost.add(ack.transaction_id)
            return
        super()._answer(station, ack)


async def test_lost_acks_make_duplicate_deliveries_that_central_absorbs(
        mosquitto, service_rig, loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver_cls=LosesFirstAnswers,
                            ack_timeout_s=0.5)
    txids, payloads = await commit_many(rig.store, 5, size=30_000)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)
    deliveries = rig.receiver.store.deliveries()
    assert all(deliveries[t] >= 2 for t in txids), deliveries
    assert rig.receiver.lost == set(txids)


async def test_receiver_restart_loses_partial_uploads(mosquitto, service_rig, tmp_path,
                                                      loop_errors) -> None:
    """Central forgets partial assemblies on restart; the station's `end` gets `missing`."""
    rig = await service_rig(mosquitto.host, mosquitto.port, chunk_size=4 * 1024, window=2,
                            ack_timeout_s=1.0)
    txids, payloads = await commit_many(rig.store, 4, size=150_000)
    rig.service.wake()
    while rig.service.link.counters.published < 40:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(rig.receiver.stop)
    await asyncio.sleep(0.3)
    rig.receiver = CentralReceiver(tmp_path / "central", host=mosquitto.host,
                                   port=mosquitto.port, client_id="central-st-1",
                                   signing_key=rig.receiver.signing_key)
    await asyncio.to_thread(rig.receiver.start)
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)


async def test_long_offline_backlog_drains(mosquitto, service_rig, tmp_path, central_signing,
                                           loop_errors) -> None:
    mosquitto.stop()
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False, connect=False,
                            window=8)
    txids, payloads = await commit_many(rig.store, 200, size=1_500)
    await asyncio.sleep(0.3)
    assert not rig.service.link.connected
    assert rig.store.health().queue_depth == 200
    mosquitto.start()
    rig.receiver = CentralReceiver(tmp_path / "central", host=mosquitto.host,
                                   port=mosquitto.port, client_id="central-st-1",
                                   signing_key=central_signing.key)
    await asyncio.to_thread(rig.receiver.start)
    await rig.wait_all_stored(txids, timeout=80)
    rig.assert_exactly_once(txids, payloads)


def _publish_all(host: str, port: int, messages: list[tuple[str, bytes, Properties | None,
                                                            bool]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        for topic, payload, props, retain in messages:
            client.publish(topic, payload, qos=1, properties=props,
                           retain=retain).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def _reply_props(topic: str | None = "bst/st-1/reply/x", correlation: bytes | None = b"c"
                 ) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    if topic is not None:
        props.ResponseTopic = topic
    if correlation is not None:
        props.CorrelationData = correlation
    return props


async def test_hostile_messages_on_station_topics_are_ignored(mosquitto, service_rig,
                                                              central_signing,
                                                              loop_errors) -> None:
    """Malformed, oversized, unexpected and unauthorised messages: logged, ignored, no crash."""
    ack, cmd = "bst/st-1/ack", "bst/st-1/cmd"
    unknown_tx = "d" * 32
    # a retained command waiting on the broker before the station subscribes: stale, ignored
    pause = json.dumps(command_body("pause")).encode()
    await asyncio.to_thread(_publish_all, mosquitto.host, mosquitto.port,
                            [(cmd, pause, _reply_props(), True)])
    rig = await service_rig(mosquitto.host, mosquitto.port)
    txids, payloads = await commit_many(rig.store, 2, size=20_000)
    garbage = [b"", b"\xff\xfe\x00", b"[]", b"{}", b"null", b"1e999", b"[" * 60_000,
               os.urandom(900_000), json.dumps({"x": "y" * 100_000}).encode()]
    hostile = [(topic, g, _reply_props(), False) for g in garbage for topic in (ack, cmd)]
    hostile += [
        # acks: for transactions we never sent, of unknown kinds, with absurd fields
        (ack, Ack(unknown_tx, AckStatus.STORED, receipt={"receipt": "R-x"}).encode(), None,
         False),
        (ack, Ack(unknown_tx, AckStatus.REJECTED, reason="no").encode(), None, False),
        (ack, json.dumps({"transaction_id": txids[0], "status": "missing",
                          "missing": [10**12, -5, "x"]}).encode(), None, False),
        (ack, json.dumps({"transaction_id": txids[0], "status": "missing",
                          "missing": list(range(50_000))}).encode()[:65_000], None, False),
        # commands: no response topic, a response topic elsewhere, unknown, no name, huge
        # correlation data, wrong version
        (cmd, json.dumps(command_body("ping")).encode(), None, False),
        (cmd, json.dumps(command_body("ping")).encode(), _reply_props("bst/st-2/cmd"), False),
        (cmd, json.dumps(command_body("format_disk")).encode(), _reply_props(), False),
        (cmd, b'{"v": 1, "args": {}}', _reply_props(), False),
        (cmd, json.dumps(command_body("ping")).encode(),
         _reply_props(correlation=os.urandom(60_000)), False),
        (cmd, json.dumps({**command_body("pause"), "v": 99}).encode(), _reply_props(), False),
    ]
    await asyncio.to_thread(_publish_all, mosquitto.host, mosquitto.port, hostile)
    await asyncio.to_thread(_publish_all, mosquitto.host, mosquitto.port,
                            [(cmd, b"", None, True)])  # clear the retained command
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)
    assert rig.service.link.connected and not rig.service.uploader.paused
    assert rig.service.link.counters.retained_ignored >= 1
    assert rig.service.ignored >= len(garbage) + 5
    assert rig.service.acks_refused >= len(garbage) + 4
    client = CommandClient(mosquitto.host, mosquitto.port, key=central_signing.key)
    await asyncio.to_thread(client.connect)
    try:
        answer = await asyncio.to_thread(client.request, "st-1", "ping")
    finally:
        await asyncio.to_thread(client.close)
    assert answer["ok"], "the station still answers after all that"
