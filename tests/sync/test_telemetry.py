"""Birth, will, health and alerts, seen by a plain subscriber on a real broker."""

from __future__ import annotations

import json

from appliance import __version__
from appliance.sync.config import TelemetrySettings
from tests.sync.chaos import ChaosProxy
from tests.sync.conftest import commit_many
from tests.sync.schemas import validate


def status_of(m) -> dict:
    return json.loads(m.payload)


async def test_retained_birth_names_the_station(mosquitto, service_rig, capture_factory,
                                                loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False)
    first = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/status")
    await first.wait_for(lambda m: status_of(m)["state"] == "online")
    late = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/status")
    birth = await late.wait_for(lambda m: m.retain)  # a late subscriber gets the retained copy
    body = status_of(birth)
    validate(birth.topic, birth.payload)
    assert body["state"] == "online" and body["station_id"] == "st-1"
    assert body["software"] == __version__ and body["models"] == {"minutiae": "test-1"}
    assert body["scanner"] == {"vendor": "Emulated", "model": "EMU-1"}
    assert body["capabilities"]["ppi"] == 500
    assert body["config_hash"] == rig.service.config_hash and len(body["config_hash"]) == 16


async def test_will_marks_a_vanished_station_offline(mosquitto, service_rig, capture_factory,
                                                     loop_errors) -> None:
    proxy = ChaosProxy(mosquitto.host, mosquitto.port)
    port = await proxy.start()
    try:
        cap = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/status")
        rig = await service_rig("127.0.0.1", port, receiver=False)
        await cap.wait_for(lambda m: status_of(m)["state"] == "online")
        proxy.cut_all()  # the station's socket dies: no DISCONNECT, so the broker sends the will
        will = await cap.wait_for(lambda m: status_of(m)["state"] == "offline")
        validate(will.topic, will.payload)
        assert status_of(will) == {"state": "offline", "station_id": "st-1", "clean": False}
        # the station comes back by itself and says so
        await cap.wait_for(lambda m: status_of(m)["state"] == "online"
                           and cap.messages.index(m) > cap.messages.index(will))
        await rig.wait_connected()
        assert rig.service.link.counters.connects >= 2
    finally:
        await proxy.close()


async def test_clean_stop_leaves_retained_offline(mosquitto, service_rig, capture_factory,
                                                  loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False)
    await rig.service.stop()
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/status")
    retained = await cap.wait_for(lambda m: m.retain)
    assert status_of(retained)["state"] == "offline" and status_of(retained)["clean"] is True
    validate(retained.topic, retained.payload)
    await rig.service.stop()  # stopping twice is harmless


async def test_periodic_health(mosquitto, service_rig, capture_factory, loop_errors) -> None:
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/health")
    rig = await service_rig(mosquitto.host, mosquitto.port,
                            telemetry=TelemetrySettings(interval_s=0.2))
    rig.service.uploader.pause()
    await commit_many(rig.store, 3)
    m = await cap.wait_for(lambda m: json.loads(m.payload)["queue_depth"] == 3)
    validate(m.topic, m.payload)
    health = json.loads(m.payload)
    assert health["uploads_paused"] is True and health["oldest_unsent_age_s"] >= 0
    assert health["disk_free_mb"] > 0 and health["audit_entries"] >= 3
    assert health["audit_head"] == rig.store.health().audit_head or health["audit_entries"] > 3
    assert health["clock"] == "synchronised" and health["clock_problem"] == ""
    assert health["link_connects"] == 1 and health["scanner_state"] == "ready"
    assert health["bookings_today"] == 3 and health["disk_total_mb"] >= health["disk_free_mb"]
    assert health["delivered"] == 0 and health["drain_per_s"] == 0
    rig.service.uploader.resume()
    drained = await cap.wait_for(lambda m: json.loads(m.payload)["queue_depth"] == 0)
    assert json.loads(drained.payload)["delivered"] == 3
    assert any(json.loads(m.payload)["drain_per_s"] > 0 for m in cap.messages)


async def test_alerts_raised_offline_reach_central_on_connect(mosquitto, service_rig,
                                                              capture_factory,
                                                              loop_errors) -> None:
    mosquitto.stop()
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False, connect=False)
    rig.service.alert("disk", "disk nearly full: new bookings refused",
                      detail={"disk_free_mb": 100})
    assert rig.events[-1] == {"type": "alert", "kind": "disk",
                              "message": "disk nearly full: new bookings refused"}
    mosquitto.start()
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/+/alerts")
    event = await cap.wait_for(lambda m: True)
    validate(event.topic, event.payload)
    body = json.loads(event.payload)
    assert body["kind"] == "disk" and body["detail"] == {"disk_free_mb": 100}
