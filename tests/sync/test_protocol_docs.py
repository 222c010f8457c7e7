"""docs/asyncapi.yaml and docs/schemas/*.json against real messages on both trees."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from appliance.sync.config import Destination, SharingManifest, TelemetrySettings
from central.commands import CommandClient
from tests.sync.conftest import commit_many
from tests.sync.schemas import DOCS, asyncapi, channels, validate, validator


def test_every_channel_has_a_payload_schema_that_exists() -> None:
    doc = asyncapi()
    assert doc["asyncapi"].startswith("3.")
    names = {c.name for c in channels()}
    assert names == {"txMeta", "txChunk", "txEnd", "txQuery", "passedOn", "ack", "status",
                     "health", "alerts",
                     "cmd", "reply"}
    for channel in channels():
        if channel.schema_ref is not None:
            assert (DOCS / channel.schema_ref).is_file(), channel.schema_ref
            validator(channel.schema_ref)  # a valid draft-07 schema
    for op in doc["operations"].values():
        assert op["channel"]["$ref"].removeprefix("#/channels/") in names
    assert sorted(p.name for p in (DOCS / "schemas").glob("*.json")) == sorted(
        {c.schema_ref.removeprefix("./schemas/") for c in channels() if c.schema_ref})


@pytest.mark.parametrize(("ref", "bad"), [
    ("./schemas/ack.json", {"v": 1, "transaction_id": "a" * 32, "status": "stored"}),
    ("./schemas/ack.json", {"v": 1, "transaction_id": "a" * 32, "status": "rejected",
                            "reason": ""}),
    ("./schemas/meta.json", {"v": 1, "transaction_id": "nothex"}),
    ("./schemas/command.json", {"v": 1, "command": "throttle", "args": {}}),
    ("./schemas/command.json", {"v": 1, "command": "reboot", "args": {}}),
    ("./schemas/status.json", {"state": "offline", "station_id": "st 1", "clean": True}),
])
def test_schemas_refuse_wrong_messages(ref: str, bad: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator(ref).validate(bad)


def reject_marked(data: bytes) -> list[str]:
    return ["not an ANSI/NIST-ITL transaction"] if data.startswith(b"REJECT") else []


async def test_real_traffic_follows_the_documents(mosquitto, service_rig, capture_factory,
                                                  central_signing, loop_errors) -> None:
    """Every message of a delivery session validates, and every documented channel is used."""
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst/#")
    watch = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/#")
    manifest = SharingManifest(version="2026-01", destinations=(
        Destination(name="State AFIS", purpose="identification"),))

    rig = await service_rig(mosquitto.host, mosquitto.port, sharing=manifest,
                            telemetry=TelemetrySettings(interval_s=0.2),
                            chunk_size=8 * 1024, ack_timeout_s=1.0)
    rig.receiver.validator = reject_marked  # as an integrator's receiver would check records
    rig.receiver.destinations = list(manifest.destinations)

    original = rig.service.link.publish
    dropped: list[str] = []

    async def lose_one_chunk(topic: str, payload: bytes, **kw) -> None:
        if topic.endswith("/chunk/1") and not dropped:  # central will ask for it: `missing`
            dropped.append(topic)
            return
        await original(topic, payload, **kw)

    rig.service.link.publish = lose_one_chunk  # type: ignore[method-assign]
    txids, _ = await commit_many(rig.store, 2, size=30_000)
    from tests.store.conftest import make_booking

    rejected = await rig.store.commit_booking(make_booking("R", prints=1), b"REJECT" * 10)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    assert (await rig.service.passed_on(txids[0]))["held"] is True
    while rig.store.outbox_state(rejected) != "rejected":
        await asyncio.sleep(0.05)
    client = CommandClient(mosquitto.host, mosquitto.port, key=central_signing.key)
    await asyncio.to_thread(client.connect)
    try:
        assert (await asyncio.to_thread(client.request, "st-1", "ping"))["ok"]
        refused = await asyncio.to_thread(client.request, "st-1", "throttle",
                                          {"rate_per_s": 1e6})  # above the station's limit
        assert not refused["ok"]
    finally:
        await asyncio.to_thread(client.close)
    await watch.wait_for(lambda m: m.topic.endswith("/health"))
    await watch.wait_for(lambda m: m.topic.endswith("/alerts"))
    await rig.service.stop()
    await watch.wait_for(lambda m: m.topic.endswith("/status") and b'"offline"' in m.payload)

    seen: dict[str, int] = {}
    for m in list(cap.messages) + list(watch.messages):
        channel = validate(m.topic, m.payload)
        seen[channel.name] = seen.get(channel.name, 0) + 1
    assert set(seen) == {c.name for c in channels()}, f"channels never used: {seen}"
    acks = [json.loads(m.payload)["status"] for m in cap.on("/ack")]
    assert {"stored", "missing", "rejected"} <= set(acks)
    assert dropped
