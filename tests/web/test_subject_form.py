"""The subject form: generated from the profile, checked as typed, looked up, and a CAR booking
taken through the kiosk's API that `booking-station validate` passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.app import build_processor
from appliance.capture.booking import BookingProcessor
from appliance.config import StationConfig
from tests.web.conftest import services_for, sign_in

SUBJECT = {"NAM": "DOE,JOHN", "POB": "NY", "DOB": "19800131", "SEX": "M", "RAC": "W",
           "HGT": "510", "WGT": "180", "EYE": "BRO", "HAI": "BLK", "DOA": "20260101",
           "ASL": "THEFT"}


@pytest.fixture(scope="module")
def processor() -> BookingProcessor:
    """The booking service's processor for the FBI EBTS CAR profile."""
    config = StationConfig.model_validate({"records": {"profile": "ebts-car"},
                                           "capture": {"sequence": "tenprint"},
                                           "quality": {"min_nfiq2_plain": 0}})
    made = build_processor(config)
    made.warm_up()
    return made


@pytest.mark.timeout(1200)  # thirteen prints with NFIQ 2 on a loaded machine
async def test_a_car_booking_from_the_kiosk_passes_validate(booking_factory, client_for,
                                                            tmp_path: Path) -> None:
    booking = await booking_factory(sequence="tenprint")
    booking.lookup_dir = tmp_path / "lookup"
    booking.lookup_dir.mkdir()
    client = client_for(services_for(booking))
    await sign_in(client)
    assert (await client.post("/api/booking", json={"booking_number": "BK-CAR-1"})).is_success

    form = (await client.get("/api/subject")).json()
    fields = {f["mnemonic"]: f for f in form["fields"]}
    assert list(fields) == ["NAM", "POB", "DOB", "SEX", "RAC", "HGT", "WGT", "EYE", "HAI",
                            "DOA", "ASL", "CRI"]  # RET, OCA, DPR, AMP: the station's own
    assert all(f["mandatory"] for m, f in fields.items() if m != "CRI")
    assert fields["SEX"]["kind"] == "code" and ["F", "female"] in fields["SEX"]["codes"]
    assert fields["DOB"]["kind"] == "date" and fields["HGT"]["kind"] == "height"
    assert form["lookup"] is True and form["values"] == {}

    wrong = {**SUBJECT, "DOB": "19801332", "HGT": "5'10", "SEX": "Q", "NAM": "JOHN DOE"}
    checked = (await client.post("/api/subject/check", json={"values": wrong})).json()
    assert set(checked["problems"]) == {"DOB", "HGT", "SEX", "NAM"}
    assert {m: w["code"] for m, w in checked["problem_words"].items()} == {
        "DOB": "no_such_date", "HGT": "height", "SEX": "pick_list", "NAM": "name"}
    refused = (await client.post("/api/subject", json={"values": wrong})).json()
    assert refused["saved"] is False and booking.booking.subject.last_name == ""
    assert (await client.post("/api/subject/lookup")).status_code == 404

    while booking.current_step is not None:
        await client.post("/api/capture")
        if (await client.post("/api/accept", json={})).status_code != 200:
            await client.post("/api/accept", json={"override_reason": "test"})
    early = await client.post("/api/submit", json={"confirm_sequence": True})
    assert early.status_code == 409 and "subject details" in early.json()["error"]

    (booking.lookup_dir / "BK-CAR-1.json").write_text(json.dumps(SUBJECT))
    found = (await client.post("/api/subject/lookup")).json()["values"]
    saved = (await client.post("/api/subject", json={"values": found})).json()
    assert saved == {"saved": True, "problems": {}, "problem_words": {}}
    assert (await client.get("/api/subject")).json()["values"] == SUBJECT
    done = await client.post("/api/submit", json={"confirm_sequence": True})
    assert done.status_code == 200, done.text

    transaction = tmp_path / "car.an2"
    transaction.write_bytes(await booking.store.load_transaction(done.json()["transaction_id"]))
    checked_file = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "validate", str(transaction),
         "--profile", "ebts-car"], capture_output=True, text=True, timeout=300)
    assert checked_file.returncode == 0, checked_file.stdout + checked_file.stderr
