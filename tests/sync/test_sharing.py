"""The sharing manifest: declared on the station, named in every upload, echoed in receipts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from appliance.sync.settings import CommandSettings, Destination, SharingManifest, SyncSettings
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
        mosquitto.host, mosquitto.port, settings=SyncSettings(sharing=MANIFEST),
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
    assert SyncSettings.from_config(object()) == SyncSettings()


def test_settings_read_from_the_station_config_once_it_declares_them() -> None:
    """The exact fields proposed for StationConfig/MqttSection, simulated by subclassing."""
    from pydantic import Field

    from appliance.config import MqttSection, StationConfig
    from appliance.sync.settings import TelemetrySettings

    class ProposedMqtt(MqttSection):
        commands: CommandSettings = Field(default_factory=CommandSettings)
        telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    class ProposedConfig(StationConfig):
        mqtt: ProposedMqtt = Field(default_factory=ProposedMqtt)
        sharing: SharingManifest = Field(default_factory=SharingManifest)

    config = ProposedConfig.model_validate({
        "mqtt": {"commands": {"allowed": ["ping"], "central_public_key": "/etc/bst/central.pub"},
                 "telemetry": {"interval_s": 5}},
        "sharing": {"version": "v3", "destinations": [{"name": "AFIS", "purpose": "id"}]},
    })
    settings = SyncSettings.from_config(config)
    assert settings.commands.allowed == ("ping",)
    assert str(settings.commands.central_public_key) == "/etc/bst/central.pub"
    assert settings.telemetry.interval_s == 5 and settings.sharing.version == "v3"
    assert settings.sharing.destinations[0].mandatory is True
    with pytest.raises(ValidationError):
        ProposedConfig.model_validate({"mqtt": {"commands": {"alowed": ["ping"]}}})
