"""One real path end to end: emulated scanner -> image -> SQLite -> MQTT -> central -> delivered."""

from __future__ import annotations

import asyncio
import logging

import pytest

from appliance.domain import Subject
from appliance.records.profile import get_profile
from appliance.records.transaction import read_transaction
from appliance.records.validate import validate_transaction
from appliance.store.crypto import parse_key
from demo.autopilot import autopilot


async def test_tenprint_booking_reaches_central(station_rig, loop_errors) -> None:
    rig = await station_rig()
    [txid] = await autopilot(rig.station.booking, 1)
    await rig.wait_stored([txid])
    data = rig.receiver.store.read("e2e-1", txid)
    assert validate_transaction(data, get_profile("local-tenprint")) == []
    records = read_transaction(data).records
    types = [r.type for r in records]
    assert types.count(14) == 13  # ten rolled, two four-finger slaps, two thumbs
    assert types.count(9) == 10  # the station's own minutiae for every rolled print
    slaps = [r for r in records if r.type == 14 and r.text(13) in ("13", "14")]
    assert all(r.get(21) for r in slaps)  # 14.021 finger segments from the segmentation
    [summary] = rig.station.store.bookings()
    assert summary.state == "stored" and summary.impressions == 13
    assert "R-" in summary.receipt
    assert rig.station.store.verify_audit().ok


async def test_no_subject_data_image_bytes_or_secret_in_logs(station_rig, caplog, capsys,
                                                             loop_errors) -> None:
    caplog.set_level(logging.DEBUG)
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"})
    session = rig.station.booking
    subject = Subject(last_name="Zabriskie", first_name="Philomena", date_of_birth="19770412",
                      sex="F")
    await session.start("BK-SECRET-4471", subject)
    images = []
    while session.current_step is not None:
        imp = await session.capture()
        images.append(imp.image)
        await session.accept()
    done = await session.submit()
    await rig.wait_stored([done.transaction_id])
    # The outbox row turns "stored" in the writer thread a moment before the sync loop, resumed
    # after that commit, logs it: wait (bounded) for the log line rather than race it.
    delivered = f"sync: transaction {done.transaction_id} stored"
    for _ in range(100):
        if delivered in caplog.text:
            break
        await asyncio.sleep(0.05)
    key = (rig.state / "credentials" / "booking-station-db-key").read_bytes()
    text = caplog.text + capsys.readouterr().out
    assert delivered in text  # the logs did record the delivery
    needles = [subject.last_name, subject.first_name, subject.date_of_birth, "BK-SECRET-4471",
               key.decode().strip(), parse_key(key).hex(), rig.password or "unused-password"]
    for needle in needles:
        assert needle not in text
    for image in images:
        assert repr(image.tobytes()[:24])[2:-1] not in text


async def test_booking_waits_in_outbox_while_central_is_away(station_rig, mosquitto,
                                                             loop_errors) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"})
    mosquitto.stop()
    [txid] = await autopilot(rig.station.booking, 1)  # biometric work never waits for the network
    assert rig.station.store.outbox_state(txid) in ("queued", "sending")
    mosquitto.start()
    await rig.wait_stored([txid], timeout=60)


@pytest.mark.parametrize("fault", [{"unplug_after_captures": 1}])
async def test_unplugged_scanner_is_reported_and_comes_back(station_rig, fault,
                                                            loop_errors) -> None:
    from appliance.errors import ScannerUnavailable
    from drivers.errors import ScannerDisconnected
    from drivers.worker import ScannerState

    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"},
                            scanner={"faults": fault})
    session = rig.station.booking
    await session.start("BK-1")
    await session.capture()
    await session.accept()
    with pytest.raises(ScannerUnavailable) as caught:  # the capture layer's name for it
        await session.capture()
    assert isinstance(caught.value.__cause__, ScannerDisconnected)
    assert rig.station.worker.state is ScannerState.DISCONNECTED
    assert [i.position for i in session.booking.impressions] == [13]  # the accepted print stays
    await rig.station.worker.call(lambda drv: drv.replug())
    await rig.station.worker.wait_ready(timeout=60)  # the worker reopens the device by itself
    imp = await session.capture()
    assert imp.position == 14
    assert rig.station.worker.state is ScannerState.READY
