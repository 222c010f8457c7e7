"""Signed receipts: forged, altered, misdirected and retained acks against a running station.

The attacker is a plain client on the real broker, as on the demo's open broker before acks
were signed: it publishes on the station's ack topic while central is away, and every booking
must still reach central and be held there once.
"""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.sync.protocol import Ack, AckStatus
from appliance.sync.receipts import AckRefused, AckVerifier, sign_ack
from appliance.sync.signing import CentralKeys, key_id, sign
from central.commands import load_private_key, write_keypair
from central.receiver import CentralReceiver
from tests.conftest import until
from tests.sync.conftest import commit_many
from tests.sync.test_tls import audit_entries

RECEIPT = {"receipt": "R-forged", "stored_at": "2026-01-01T00:00:00+00:00", "sha256": "0" * 64}


def publish(host: str, port: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def stored(txid: str) -> Ack:
    return Ack(txid, AckStatus.STORED, receipt=RECEIPT)


async def test_forged_acks_are_never_applied_and_every_booking_reaches_central(
        mosquitto, service_rig, central_signing, tmp_path, loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False, ack_timeout_s=1.0)
    txids, payloads = await commit_many(rig.store, 5, size=20_000)
    rig.service.wake()
    await until(lambda: all(rig.store.outbox_state(t) == "sending" for t in txids[:4]),
                what="the uploads starting while central is away")
    attacker = Ed25519PrivateKey.generate()
    impostor = sign({**stored(txids[1]).body(), "station_id": "st-1", "signed_at": 1.0},
                    attacker)
    impostor["kid"] = key_id(central_signing.key.public_key())  # claims central's key
    impostor["sig"] = sign({k: v for k, v in impostor.items() if k != "sig"}, attacker)["sig"]
    genuine = json.loads(sign_ack(stored(txids[4]), "st-1", central_signing.key))
    altered = {**genuine, "transaction_id": txids[3]}  # a real receipt moved to another booking
    forged: list[tuple[bytes, bool]] = [
        (stored(txids[0]).encode(), False),  # unsigned `stored`
        (sign_ack(stored(txids[1]), "st-1", attacker), False),  # signed by a key not central's
        (json.dumps(impostor).encode(), False),  # names central's key id, another key's sig
        (Ack(txids[2], AckStatus.REJECTED, reason="forged").encode(), False),  # final if taken
        (sign_ack(stored(txids[3]), "st-2", central_signing.key), False),  # for another station
        (json.dumps(altered).encode(), False),
        (stored(txids[3]).encode(), True),  # retained, published while the station listens
    ]
    for payload, retain in forged:
        await asyncio.to_thread(publish, mosquitto.host, mosquitto.port, rig.topics.ack,
                                payload, retain=retain)
    await until(lambda: rig.service.acks_refused >= len(forged), what="every forgery refused")
    states = {t: rig.store.outbox_state(t) for t in txids}
    assert all(s in ("queued", "sending") for s in states.values()), states
    assert all(b.receipt is None for b in rig.store.bookings())
    assert rig.service.uploader.delivered == 0

    refused = [e["detail"] for e in audit_entries(rig.store) if e["action"] == "ack_refused"]
    assert [d["reason"] for d in refused] == [
        "unsigned", "signed by an unknown key", "bad signature", "unsigned",
        "signed for another station", "bad signature", "unsigned"]
    assert [d["transaction_id"] for d in refused] == [
        txids[0], txids[1], txids[1], txids[2], txids[3], txids[3], txids[3]]
    health = await rig.service.publish_health()
    assert health.acks_refused == len(forged)
    assert any("ack(s) refused" in a for a in health.alerts)

    # central comes back: every booking, those the forgeries named included, is held once
    rig.receiver = CentralReceiver(tmp_path / "central", host=mosquitto.host,
                                   port=mosquitto.port, client_id="central-st-1",
                                   signing_key=central_signing.key)
    await asyncio.to_thread(rig.receiver.start)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)
    assert all(json.loads(b.receipt)["receipt"] != "R-forged" for b in rig.store.bookings())
    await asyncio.to_thread(publish, mosquitto.host, mosquitto.port, rig.topics.ack, b"",
                            retain=True)


async def test_a_key_rollover_loses_no_booking(mosquitto, service_rig, central_signing,
                                               tmp_path, loop_errors) -> None:
    """Two central keys during a rollover: acks signed by either are taken, none by a third."""
    write_keypair(tmp_path / "new.key", tmp_path / "new.pub")
    new = load_private_key(tmp_path / "new.key")
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False,
                            central_keys=(central_signing.public, tmp_path / "new.pub"))
    for n, key in enumerate((central_signing.key, new)):
        receiver = CentralReceiver(tmp_path / f"central-{n}", host=mosquitto.host,
                                   port=mosquitto.port, client_id=f"central-{n}",
                                   signing_key=key)
        await asyncio.to_thread(receiver.start)
        try:
            txids, _ = await commit_many(rig.store, 2, prefix=f"K{n}")
            rig.service.wake()
            await rig.wait_all_stored(txids)
        finally:
            await asyncio.to_thread(receiver.stop)
    assert rig.service.acks_refused == 0
    assert set(rig.service.diagnostics()["central_keys"]) == {
        key_id(central_signing.key.public_key()), key_id(new.public_key())}


def test_the_verifier_binds_station_transaction_status_and_receipt() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = AckVerifier("st-1", CentralKeys([key.public_key()]))
    txid = "a" * 32
    ack = verifier.admit(sign_ack(stored(txid), "st-1", key))
    assert ack.status is AckStatus.STORED and ack.receipt == RECEIPT
    genuine = json.loads(sign_ack(stored(txid), "st-1", key))
    for field, value in (("status", "rejected"), ("transaction_id", "b" * 32),
                         ("receipt", {**RECEIPT, "receipt": "R-other"}),
                         ("station_id", "st-2"), ("signed_at", 0)):
        with pytest.raises(AckRefused, match="bad signature"):
            verifier.admit(json.dumps({**genuine, field: value}).encode())
    with pytest.raises(AckRefused, match="no central key"):
        AckVerifier("st-1", CentralKeys()).admit(stored(txid).encode())
    bench = AckVerifier("st-1", CentralKeys(), allow_unsigned=True)
    assert bench.admit(stored(txid).encode()).transaction_id == txid
    with pytest.raises(AckRefused, match="unsigned"):  # a key configured: the bench flag is moot
        AckVerifier("st-1", CentralKeys([key.public_key()]), allow_unsigned=True).admit(
            stored(txid).encode())
    for junk in (b"", b"[]", b"{" * 70_000):
        with pytest.raises(AckRefused, match="malformed"):
            verifier.admit(junk)
