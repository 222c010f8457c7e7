"""The charts' history: samples kept a month and no longer, buckets, bookings, NFIQ 2 bands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.domain import Subject
from appliance.store.samples import Sample, record
from demo.run import prepare_state
from tests.web.admin_helpers import a_finished_booking, sign_in
from tests.web.conftest import services_for


@pytest.fixture
def creds(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    folder, password = prepare_state(tmp_path / "state")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder, password


def sample(depth: int, delivered: int, errors: int = 0, reconnects: int = 0) -> Sample:
    return Sample(queue_depth=depth, oldest_unsent_s=None, delivered_total=delivered,
                  scanner_errors=errors, scanner_reconnects=reconnects, disk_free_mb=900,
                  cpu_temperature_c=None)


async def test_history_buckets_and_its_month_bound(booking_factory, client_for, creds) -> None:
    booking = await booking_factory()
    store = booking.store
    now = datetime.now(UTC).replace(microsecond=0)
    ten = now - timedelta(minutes=now.minute % 10, seconds=now.second)  # a bucket's start
    await store.write(record(sample(1, 0), at=now - timedelta(days=40)))
    await store.write(record(sample(4, 10, errors=1), at=ten - timedelta(minutes=30)))
    await store.write(record(sample(9, 12, errors=3, reconnects=1), at=ten - timedelta(minutes=25)))
    await store.write(record(sample(2, 19, errors=3, reconnects=1), at=ten - timedelta(minutes=15)))
    # a restart reset the scanner counters: the growth counts from zero again
    await store.write(record(sample(0, 21, errors=1, reconnects=0), at=ten + timedelta(minutes=1)))
    rows = store.read(lambda c: c.execute("SELECT COUNT(*) FROM health_samples").fetchone()[0])
    assert rows == 4  # the 40-day-old sample went at the next insert
    await a_finished_booking(booking, "BK-CHART-1", Subject())
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])
    day = (await client.get("/api/admin/history?span=day")).json()
    outbox = day["outbox"]
    assert day["bucket_s"] == 600 and len(outbox["t"]) == 3
    assert outbox["queue"] == [9, 2, 0]  # the highest depth of each ten minutes
    assert outbox["drained"] == [2, 7, 2] and outbox["errors"] == [2, 0, 1]
    assert outbox["reconnects"] == [1, 0, 0]
    assert outbox["t"][-1] == int(ten.timestamp())
    month = (await client.get("/api/admin/history?span=month")).json()
    assert month["bucket_s"] == 86400 and len(month["bookings_per_day"]["t"]) == 30
    assert month["bookings_per_day"]["bookings"][-1] == 1
    bands = month["nfiq2_by_position"]
    assert set(bands) == {"13", "14", "15"} and all(sum(b) == 1 for b in bands.values())
    assert (await client.get("/api/admin/history?span=year")).status_code == 422
