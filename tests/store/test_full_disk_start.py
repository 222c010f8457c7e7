"""A full disk at start-up is a full disk, never corruption (a real small tmpfs).

The station's store sits on a 16 MiB tmpfs with three bookings queued for central; a filler
file leaves 0, 4, 24 or 256 KiB free; then the station starts. It must not quarantine the sound
store, must say "disk full" with what it needs, refuse new bookings, and still deliver every
queued booking to central exactly once; once space comes back it takes bookings again without a
restart. A second case has no reserve at all: the store cannot open, the station starts
degraded and opens the store by itself when the filler goes. A third fills the disk in the
middle of a booking.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.app import Station
from appliance.config import StationConfig, validate_config_data
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.database import marker_path, stamp_path
from appliance.store.errors import DiskFull
from appliance.store.store import Store
from central.commands import load_private_key, write_keypair
from central.receiver import CentralReceiver
from tests.conftest import until
from tests.store.conftest import make_booking
from tests.store.test_disk_full import small_disk  # noqa: F401  (the fixture)

RESERVE_MB = 2


def central_keys(folder: Path) -> tuple[Path, Ed25519PrivateKey]:
    """Central's key pair: the receiver signs its acks, the station holds the public half."""
    folder.mkdir(parents=True, exist_ok=True)
    write_keypair(folder / "central.key", folder / "central.pub")
    return folder / "central.pub", load_private_key(folder / "central.key")


async def start_central(tmp_path: Path, port: int, client_id: str
                        ) -> tuple[CentralReceiver, Path]:
    """The reference receiver on the test's broker, signing its acks with a new central key;
    returns it with the public key file the station is configured with."""
    public, signing = central_keys(tmp_path / "keys")
    central = CentralReceiver(tmp_path / "central", host="127.0.0.1", port=port, prefix="bst",
                              client_id=client_id, signing_key=signing)
    await asyncio.to_thread(central.start)
    return central, public


def config_for(data_dir: Path, broker_port: int, *, reserve_mb: int,
               central_key: Path) -> StationConfig:
    config, problems = validate_config_data({
        "station": {"station_id": "full-1", "data_dir": str(data_dir)},
        "scanner": {"type": "emulated", "seed": 4},
        "store": {"min_free_mb": 1, "reserve_mb": reserve_mb},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 1.0, "central_keys": [str(central_key)]},
        "web": {"port": 0},
        "capture": {"sequence": "flats"},
        "records": {"profile": "local-flats"},
        "system": {"store_retry_s": 0.5},
    })
    assert config is not None, problems
    return config


async def queue_bookings(db: Path, key: bytes, reserve_mb: int, count: int = 3) -> list[str]:
    store = Store(db, BlobCipher(key), min_free_mb=1, reserve_bytes=reserve_mb * 2**20)
    store.open()
    try:
        return [await store.commit_booking(make_booking(f"Q{n}", seed=n), os.urandom(150_000))
                for n in range(count)]
    finally:
        store.close()


def fill(disk: Path, leave_kib: int) -> Path:
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))
    assert shutil.disk_usage(disk).free <= leave_kib * 1024
    return filler


def alerts(station: Station) -> list[str]:
    return station.health.read().alerts


@pytest.mark.parametrize("clean_stop", [True, False], ids=["clean-stop", "after-a-crash"])
@pytest.mark.parametrize("free_kib", [0, 4, 24, 256])
async def test_full_disk_at_start_drains_and_refuses_bookings(
        small_disk: Path, mosquitto, tmp_path: Path, free_kib: int,  # noqa: F811
        clean_stop: bool) -> None:
    key = new_key()
    db = small_disk / "station.db"
    queued = await queue_bookings(db, key, RESERVE_MB)
    if not clean_stop:  # as after a crash: the start runs the whole-file check on a full disk
        stamp_path(db).unlink()
    filler = fill(small_disk, free_kib)
    central, public = await start_central(tmp_path, mosquitto.port, "central-full")
    station = Station(config_for(small_disk, mosquitto.port, reserve_mb=RESERVE_MB,
                                 central_key=public), store_key=key)
    try:
        await station.start()
        # the sound store opened, was not quarantined, and says what it is short of
        assert station.store is not None, station.store_problem
        assert not marker_path(db).exists()
        assert not list(small_disk.glob("station.db.corrupt-*"))
        said = await asyncio.to_thread(alerts, station)
        assert any(a.startswith("disk full:") and "MB needed" in a for a in said), said
        on_kiosk = await asyncio.to_thread(station.services().notices)  # the officer's banner
        assert any(n.startswith("disk full:") and "MB needed" in n for n in on_kiosk), on_kiosk
        assert station.booking is not None
        with pytest.raises(DiskFull, match="disk full"):
            await station.booking.start("BK-NEW-1")
        # every queued booking reaches central once, with the disk still full
        await until(lambda: all(central.store.holds(t) for t in queued), 120, "the queued bookings")
        assert all(central.store.deliveries()[t] == 1 for t in queued)
        await until(lambda: all(station.store.outbox_state(t) == "stored" for t in queued), 60,
                    "central's acks")
        # space comes back: bookings are taken again, no restart
        filler.unlink()
        said = await asyncio.to_thread(alerts, station)
        assert not [a for a in said if "disk full" in a], said
        assert not [n for n in await asyncio.to_thread(station.services().notices)
                    if "disk full" in n]
        booking = await station.booking.start("BK-AFTER")
        assert booking.booking_number == "BK-AFTER"
        await station.booking.cancel()
    finally:
        await station.stop()
        await asyncio.to_thread(central.stop)



async def test_no_reserve_starts_degraded_and_opens_when_space_returns(
        small_disk: Path, mosquitto, tmp_path: Path) -> None:  # noqa: F811
    key = new_key()
    db = small_disk / "station.db"
    queued = await queue_bookings(db, key, 0)
    filler = fill(small_disk, 0)
    central, public = await start_central(tmp_path, mosquitto.port, "central-full0")
    station = Station(config_for(small_disk, mosquitto.port, reserve_mb=0, central_key=public),
                      store_key=key)
    try:
        await station.start()
        assert station.store is None
        assert station.store_problem is not None
        assert station.store_problem.startswith("disk full:"), station.store_problem
        assert not marker_path(db).exists()
        assert not list(small_disk.glob("station.db.corrupt-*"))
        said = await asyncio.to_thread(alerts, station)
        assert any(a.startswith("disk full:") for a in said), said
        filler.unlink()
        await until(lambda: station.booking is not None, 120, "the store to open by itself")
        assert station.store_problem is None
        await until(lambda: all(central.store.holds(t) for t in queued), 120, "the queued bookings")
        assert all(central.store.deliveries()[t] == 1 for t in queued)
    finally:
        await station.stop()
        await asyncio.to_thread(central.stop)


@pytest.mark.parametrize("free_kib", [0, 4, 24, 256])
async def test_a_disk_that_fills_mid_booking_loses_no_accepted_print(
        small_disk: Path, mosquitto, tmp_path: Path, free_kib: int) -> None:  # noqa: F811
    """The disk fills between two prints of a booking: every step either works or says
    "disk full"; the print accepted before is kept, and once space is back the same booking
    is finished and delivered to central once."""
    key = new_key()
    central, public = await start_central(tmp_path, mosquitto.port, "central-mid")
    station = Station(config_for(small_disk, mosquitto.port, reserve_mb=RESERVE_MB,
                                 central_key=public), store_key=key)
    filler = None
    try:
        await station.start()
        session = station.booking
        assert session is not None
        booking = await session.start("BK-MID")
        await session.capture()
        first = await session.accept(override_reason="test print")
        filler = fill(small_disk, free_kib)
        refused: list[str] = []
        try:
            while session.current_step is not None or session.pending is not None:
                if session.pending is None:
                    await session.capture()
                await session.accept(override_reason="test print")
            await session.submit(confirm_sequence=True)
        except DiskFull as exc:
            refused.append(str(exc))
        # something on the way to a committed booking needed the disk, and said so
        assert refused and refused[0].startswith("disk full"), refused
        assert session.booking is not None and session.booking.booking_id == booking.booking_id
        assert first.impression_id in {i.impression_id for i in session.booking.impressions}
        filler.unlink()
        filler = None
        while session.current_step is not None or session.pending is not None:
            if session.pending is None:
                await session.capture()
            await session.accept(override_reason="test print")
        done = await session.submit(confirm_sequence=True)
        await until(lambda: central.store.holds(done.transaction_id), 120, "the booking at central")
        assert central.store.deliveries()[done.transaction_id] == 1
        await until(lambda: station.store.outbox_state(done.transaction_id) == "stored", 60,
                    "central's ack")
    finally:
        if filler is not None:
            filler.unlink()
        await station.stop()
        await asyncio.to_thread(central.stop)
