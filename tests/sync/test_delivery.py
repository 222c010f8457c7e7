from __future__ import annotations

import asyncio
import logging
import os

import paho.mqtt.client as mqtt
import pytest

from appliance.sync.protocol import (
    Ack,
    AckStatus,
    MalformedMessage,
    TransactionMeta,
    meta_for,
    split,
)
from tests.conftest import until
from tests.store.conftest import make_booking


def test_split_and_meta_round_trip() -> None:
    data = os.urandom(300_001)
    chunks = split(data, 100_000)
    assert [len(c) for c in chunks] == [100_000, 100_000, 100_000, 1]
    meta = meta_for("a" * 32, data, 100_000, content_type="x", priority=5, clock_trusted=False)
    assert TransactionMeta.decode(meta.encode()) == meta
    assert split(b"", 10) == [b""]


@pytest.mark.parametrize("payload", [
    b"", b"not json", b"[]", b'{"transaction_id": "zz", "status": "stored"}',
    b'{"transaction_id": "' + b"a" * 32 + b'", "status": "stored"}',  # stored without a receipt
    b'{"transaction_id": "' + b"a" * 32 + b'", "status": "rejected"}',  # no reason
    b'{"transaction_id": "' + b"a" * 32 + b'", "status": "lost"}',
    b"{" * 70000,
])
def test_malformed_acks_are_refused(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Ack.decode(payload)


async def test_bookings_reach_central_exactly_once(sync_rig, loop_errors) -> None:
    rig = await sync_rig(chunk_size=16 * 1024)
    payloads = [os.urandom(50_000 + n * 7_000) for n in range(6)]
    txids = [await rig.store.commit_booking(make_booking(f"B{n}", prints=1), p)
             for n, p in enumerate(payloads)]
    rig.uploader.wake()
    await rig.wait_all_stored(txids)
    for txid, payload in zip(txids, payloads, strict=True):
        assert rig.receiver.store.read("st-1", txid) == payload
    assert rig.receiver.store.deliveries() == dict.fromkeys(txids, 1)
    receipts = {b.receipt for b in rig.store.bookings()}
    assert all(r and "R-" in r for r in receipts)


async def test_broker_killed_and_restarted_mid_upload(sync_rig, mosquitto, loop_errors) -> None:
    rig = await sync_rig(chunk_size=8 * 1024, window=2)
    payloads = [os.urandom(400_000) for _ in range(5)]
    txids = [await rig.store.commit_booking(make_booking(f"K{n}", prints=1), p)
             for n, p in enumerate(payloads)]
    rig.uploader.wake()
    while rig.link.counters.published < 20:
        await asyncio.sleep(0.01)
    mosquitto.kill()
    await until(lambda: not rig.link.connected, what="the link noticing the broker is gone")
    mosquitto.start()
    await rig.wait_all_stored(txids, timeout=90)
    for txid, payload in zip(txids, payloads, strict=True):
        assert rig.receiver.store.read("st-1", txid) == payload
    assert set(rig.receiver.store.deliveries()) == set(txids)
    assert rig.link.counters.connects >= 2


async def test_a_lost_broker_is_a_warning_and_a_stop_is_not(sync_rig, mosquitto, caplog,
                                                             loop_errors) -> None:
    """Operators count disconnects and read warnings: a station shutting down cleanly must not
    look like a broker or network failure in either."""
    rig = await sync_rig()
    with caplog.at_level(logging.INFO, logger="appliance.sync.link"):
        mosquitto.kill()

        def lost() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

        # the network thread logs the loss last (after `connected` and the counter change)
        async with asyncio.timeout(20):
            while not any(m.startswith("mqtt: connection lost") for m in lost()):
                await asyncio.sleep(0.05)
        assert not rig.link.connected and rig.link.counters.disconnects == 1
        mosquitto.start()
        async with asyncio.timeout(20):
            while not rig.link.connected:
                await asyncio.sleep(0.05)
        caplog.clear()
        await asyncio.to_thread(rig.link.stop)
    assert not rig.link.connected
    assert rig.link.counters.disconnects == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "mqtt: disconnected from the broker (the link is stopping)" in caplog.messages


async def test_missing_chunks_are_resent(sync_rig, mosquitto, loop_errors) -> None:
    """A chunk that never arrives is asked for by central and sent again."""
    rig = await sync_rig(chunk_size=4 * 1024)
    original = rig.link.publish
    dropped: list[str] = []

    async def lossy(topic: str, payload: bytes, **kw):
        if topic.endswith("/chunk/3") and not dropped:
            dropped.append(topic)
            return  # the broker never sees it
        await original(topic, payload, **kw)

    rig.link.publish = lossy  # type: ignore[method-assign]
    payload = os.urandom(40_000)
    txid = await rig.store.commit_booking(make_booking("M", prints=1), payload)
    rig.uploader.wake()
    await rig.wait_all_stored([txid])
    assert dropped and rig.receiver.store.read("st-1", txid) == payload


async def test_garbage_on_station_topics_is_ignored(sync_rig, mosquitto, loop_errors) -> None:
    rig = await sync_rig()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for payload in (b"\xff\xfe", b"{}", b'{"status":"stored"}', os.urandom(2000)):
            client.publish(rig.topics.ack, payload, qos=1).wait_for_publish(5)
            client.publish("bst/st-1/tx/" + "b" * 32 + "/meta", payload, qos=1
                           ).wait_for_publish(5)
            client.publish("bst/st-1/tx/nothex/chunk/1", payload, qos=1).wait_for_publish(5)
        fake = Ack("c" * 32, AckStatus.STORED, receipt={"receipt": "R-fake"}).encode()
        client.publish(rig.topics.ack, fake, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    payload = os.urandom(10_000)
    txid = await rig.store.commit_booking(make_booking("G", prints=1), payload)
    rig.uploader.wake()
    await rig.wait_all_stored([txid])
    assert rig.receiver.malformed >= 4
    assert rig.receiver.store.count() == 1
