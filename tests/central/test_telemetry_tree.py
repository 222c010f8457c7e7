"""Telemetry apart from bookings: the shipped ACL's monitoring user, on a real mutual-TLS broker."""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as mqtt

from appliance.sync.config import TelemetrySettings
from appliance.sync.tls import client_context
from tests.conftest import REPO, until
from tests.sync.conftest import commit_many
from tests.sync.pki import Pki

ACL = REPO / "docs" / "mosquitto-acl.conf"


async def test_monitoring_user_reads_all_telemetry_and_never_a_transaction(
        pki: Pki, mosquitto_factory, service_rig, capture_factory, loop_errors) -> None:
    broker = mosquitto_factory(pki.broker_lines() + f"acl_file {ACL}\n")
    central_tls = client_context(pki.client_section("central"))
    monitoring_tls = client_context(pki.client_section("monitoring"))
    # central's own view of the bus: the control that shows transactions were on it
    central_view = capture_factory(broker.host, broker.port, "bst/#", tls=central_tls)
    telemetry = capture_factory(broker.host, broker.port, "bst-telemetry/#", tls=monitoring_tls)
    bookings = capture_factory(broker.host, broker.port, "bst/#", tls=monitoring_tls)
    everything = capture_factory(broker.host, broker.port, "#", tls=monitoring_tls)

    rig = await service_rig(broker.host, broker.port, tls=pki.client_section("st-1"),
                            receiver_tls=central_tls, telemetry=TelemetrySettings(interval_s=0.2))
    txids, payloads = await commit_many(rig.store, 3, size=20_000)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.service.alert("scanner", "scanner unplugged")
    await rig.service.publish_health()

    for kind in ("status", "health", "alerts"):
        await telemetry.wait_for(lambda m, k=kind: m.topic == f"bst-telemetry/st-1/{k}")
    await until(lambda: len({m.topic for m in central_view.on("/end")}) >= 3,
                what="central seeing the deliveries")
    health = [json.loads(m.payload) for m in telemetry.on("/health")]
    assert any(h["station_id"] == "st-1" for h in health)

    seen_by_monitoring = telemetry.messages + bookings.messages + everything.messages
    assert bookings.messages == []
    assert all(m.topic.startswith("bst-telemetry/") for m in seen_by_monitoring)
    for payload in payloads:
        assert not any(payload[:64] in m.payload for m in seen_by_monitoring)
    assert not any(t in m.payload.decode() for m in seen_by_monitoring for t in txids)


async def test_monitoring_user_cannot_speak_for_a_station_or_command_one(
        pki: Pki, mosquitto_factory, capture_factory) -> None:
    broker = mosquitto_factory(pki.broker_lines() + f"acl_file {ACL}\n")
    central_tls = client_context(pki.client_section("central"))
    central_view = capture_factory(broker.host, broker.port, "bst-telemetry/#", tls=central_tls)
    station_view = capture_factory(broker.host, broker.port, "bst/st-1/cmd",
                                   tls=client_context(pki.client_section("st-1")))
    clients = {name: mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
               for name in ("st-1", "monitoring", "central")}
    for name, client in clients.items():
        client.tls_set_context(client_context(pki.client_section(name)))
        client.connect(broker.host, broker.port)
        client.loop_start()
    try:
        def send(name: str, topic: str, payload: bytes) -> None:
            clients[name].publish(topic, payload, qos=1).wait_for_publish(30)

        # what monitoring publishes is acknowledged and dropped; each real message after it on
        # the same topic arrives, so the forgery would have arrived before it
        await asyncio.to_thread(send, "monitoring", "bst-telemetry/st-1/status", b"forged")
        await asyncio.to_thread(send, "monitoring", "bst/st-1/cmd", b"forged")
        await asyncio.to_thread(send, "st-1", "bst-telemetry/st-1/status", b"real")
        await asyncio.to_thread(send, "central", "bst/st-1/cmd", b"real")
        await central_view.wait_for(lambda m: m.payload == b"real", timeout=30)
        await station_view.wait_for(lambda m: m.payload == b"real", timeout=30)
        assert [m.payload for m in central_view.messages] == [b"real"]
        assert [m.payload for m in station_view.messages] == [b"real"]
    finally:
        for client in clients.values():
            client.loop_stop()
            client.disconnect()
