"""The sharing manifest: declared on the station, named in every upload, echoed in receipts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from appliance.sync.config import CommandSettings, Destination, SharingManifest
from central.receiver import Destination as CentralDestination
from tests.sync.conftest import commit_many

MANIFEST = SharingManifest(version="2026-02", destinations=(
    Destination(name="State AFIS", purpose="identification and criminal history"),
    Destination(name="FBI NGI", purpose="national criminal history", mandatory=True),
    Destination(name="Regional research pool", purpose="de-identified quality statistics",
                mandatory=False),
))


async def test_kiosk_summary_shows_receipt_and_shared_with(mosquitto, service_rig,
                                                           capture_factory,
                                                           loop_errors) -> None:
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst/+/tx/+/meta")
    rig = await service_rig(
        mosquitto.host, mosquitto.port, sharing=MANIFEST,
        destinations=[CentralDestination(d.name, d.purpose, d.mandatory)
                      for d in MANIFEST.destinations])
    txids, _ = await commit_many(rig.store, 2)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    metas = cap.json_on("/meta")
    assert metas and {m["manifest_version"] for m in metas} == {"2026-02"}
    summaries = rig.store.bookings()
    assert len(summaries) == 2
    for summary in summaries:
        assert summary.state == "stored"
        receipt = json.loads(summary.receipt)
        assert receipt["receipt"].startswith("R-")
        assert receipt["manifest_version"] == "2026-02"
        assert receipt["shared_with"] == [
            {"name": d.name, "purpose": d.purpose, "mandatory": d.mandatory}
            for d in MANIFEST.destinations]


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        SharingManifest.model_validate({"version": "1", "destinations": [], "owner": "x"})
    with pytest.raises(ValidationError):
        Destination.model_validate({"name": "", "purpose": "x"})
    with pytest.raises(ValidationError, match="unknown command"):
        CommandSettings(allowed=("ping", "reboot"))


def test_settings_read_from_the_station_config() -> None:
    from appliance.config import StationConfig

    config = StationConfig.model_validate({
        "mqtt": {"commands": {"allowed": ["ping"]}, "central_keys": ["/etc/bst/central.pub"],
                 "telemetry": {"interval_s": 5}},
        "sharing": {"version": "v3", "destinations": [{"name": "AFIS", "purpose": "id"}]},
    })
    assert config.mqtt.commands.allowed == ("ping",)
    assert [str(p) for p in config.mqtt.central_keys] == ["/etc/bst/central.pub"]
    assert config.mqtt.telemetry.interval_s == 5 and config.sharing.version == "v3"
    assert config.sharing.destinations[0].mandatory is True
    with pytest.raises(ValidationError):
        StationConfig.model_validate({"mqtt": {"commands": {"alowed": ["ping"]}}})
