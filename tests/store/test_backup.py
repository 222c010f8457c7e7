"""Backups, and the technician's way back from a corrupt store: restore-backup or new."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.cli.store import backup_command, new_store_command, restore_backup_command
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.errors import StoreBusy, StoreCorrupt
from appliance.store.store import Store
from tests.store.conftest import make_booking
from tests.store.crash_check import Expectations, check_store

TX = b"TRANSACTION" * 300


def booking_numbers(db: Path, key: bytes) -> set[str]:
    store = Store(db, BlobCipher(key))
    store.open()
    try:
        return {b.booking_number for b in store.bookings(limit=1000)}
    finally:
        store.close()


def corrupt(db: Path) -> None:
    """Scribble over the middle of the file, as a failing SD card would."""
    data = bytearray(db.read_bytes())
    assert len(data) > 5 * 4096
    data[2 * 4096: 4 * 4096] = b"\xa5" * (2 * 4096)
    db.write_bytes(bytes(data))


def config_for(tmp_path: Path, key: bytes) -> Path:
    key_file = tmp_path / "db.key"
    key_file.write_text(key.hex())
    key_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n'
                      f'[store]\nkey_file = "{key_file}"\n')
    return config


async def test_backups_are_whole_snapshots_kept_newest_n(store: Store, key: bytes) -> None:
    for n in range(3):
        await store.commit_booking(make_booking(f"A{n}", seed=n), TX)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    # a backup taken while commits are in flight holds whole bookings only
    commits = [store.commit_booking(make_booking(f"B{n}", seed=n), TX) for n in range(6)]
    results = await asyncio.gather(*commits, store.backup_now(keep=3, now=t0))
    first = results[-1]
    assert check_store(first, key, Expectations()) == []
    assert {f"A{n}" for n in range(3)} <= booking_numbers(first, key)
    for hour in range(1, 5):
        await store.backup_now(keep=3, now=t0 + timedelta(hours=hour))
    kept = store.list_backups()
    assert [p.name for p in kept] == [
        f"station-202603{d}.db" for d in ("01T020000.000000Z", "01T030000.000000Z",
                                           "01T040000.000000Z")]
    assert not first.exists()
    assert len(booking_numbers(kept[-1], key)) == 9
    assert not list(store.backups_dir.glob("*.tmp"))
    assert all(p.stat().st_mode & 0o077 == 0 for p in kept)


async def test_backup_if_due_takes_one_at_start_then_on_schedule(store: Store) -> None:
    await store.commit_booking(make_booking(), TX)
    now = datetime.now(UTC)
    assert await store.backup_if_due(timedelta(hours=24), now=now) is not None
    assert await store.backup_if_due(timedelta(hours=24), now=now + timedelta(hours=1)) is None
    assert await store.backup_if_due(timedelta(hours=24), now=now + timedelta(hours=25))
    assert len(store.list_backups()) == 2


async def test_corrupt_store_is_refused_until_a_backup_is_restored(tmp_path: Path) -> None:
    key = new_key()
    config = config_for(tmp_path, key)
    db = tmp_path / "data" / "station.db"
    store = Store(db, BlobCipher(key))
    store.open()
    txids = [await store.commit_booking(make_booking(f"K{n}", seed=n), TX) for n in range(4)]
    await store.backup_now()
    store.close()
    corrupt(db)

    with pytest.raises(StoreCorrupt, match="moved aside"):
        Store(db, BlobCipher(key)).open()
    with pytest.raises(StoreCorrupt, match="restore-backup"):  # refused again, not a new store
        Store(db, BlobCipher(key)).open()
    assert not db.exists()

    out = io.StringIO()
    assert await asyncio.to_thread(restore_backup_command, config, None, out) == 0, out.getvalue()
    assert "4 bookings, 4 not yet delivered" in out.getvalue()

    store = Store(db, BlobCipher(key))
    store.open()
    try:
        assert {b.booking_number for b in store.bookings()} == {f"K{n}" for n in range(4)}
        for txid in txids:
            assert await store.load_transaction(txid) == TX
        assert store.verify_audit().ok
        last = store.read(lambda c: c.execute(
            "SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()[0])
        assert last == "store_restored"
    finally:
        store.close()
    assert any(p.name.startswith("station.db.corrupt-") for p in db.parent.iterdir())


async def test_restore_keeps_the_replaced_store_and_needs_the_station_stopped(
        tmp_path: Path) -> None:
    key = new_key()
    config = config_for(tmp_path, key)
    db = tmp_path / "data" / "station.db"
    store = Store(db, BlobCipher(key))
    store.open()
    await store.commit_booking(make_booking("OLD"), TX)
    await store.backup_now()
    await store.commit_booking(make_booking("AFTER-BACKUP"), TX)
    out = io.StringIO()
    assert await asyncio.to_thread(restore_backup_command, config, None, out) == 1
    assert "in use by another process" in out.getvalue()
    store.close()
    with pytest.raises(StoreBusy):
        with open_store(db, key):
            from appliance.store.backup import restore_backup
            restore_backup(db)
    out = io.StringIO()
    backup = Store(db, BlobCipher(key)).list_backups()[0]
    assert await asyncio.to_thread(restore_backup_command, config, backup, out) == 0
    assert booking_numbers(db, key) == {"OLD"}
    [replaced] = [p for p in db.parent.iterdir() if ".replaced-" in p.name
                  and not p.name.endswith(("-wal", "-shm"))]
    assert booking_numbers(replaced, key) == {"OLD", "AFTER-BACKUP"}
    listing = io.StringIO()
    assert restore_backup_command(config, None, listing, list_only=True) == 0
    assert backup.name in listing.getvalue()


class open_store:
    """A store held open for the length of a with-block."""

    def __init__(self, db: Path, key: bytes) -> None:
        self.store = Store(db, BlobCipher(key))

    def __enter__(self) -> Store:
        self.store.open()
        return self.store

    def __exit__(self, *_: object) -> None:
        self.store.close()


async def test_new_store_after_corruption_and_never_over_undelivered_work(
        tmp_path: Path) -> None:
    key = new_key()
    config = config_for(tmp_path, key)
    db = tmp_path / "data" / "station.db"
    with open_store(db, key) as store:
        await store.commit_booking(make_booking("PENDING"), TX)
    out = io.StringIO()
    assert new_store_command(config, out) == 1
    assert "1 undelivered" in out.getvalue()
    assert booking_numbers(db, key) == {"PENDING"}

    corrupt(db)
    with pytest.raises(StoreCorrupt):
        Store(db, BlobCipher(key)).open()
    out = io.StringIO()
    assert new_store_command(config, out) == 0, out.getvalue()
    with open_store(db, key) as store:
        assert store.bookings() == []
        assert store.verify_audit().ok
        actions = store.read(lambda c: [r[0] for r in c.execute(
            "SELECT action FROM audit_log")])
        assert actions == ["store_created"]
        await store.commit_booking(make_booking("FRESH"), TX)


def test_a_missing_store_beside_backups_is_refused(tmp_path: Path) -> None:
    key = new_key()
    db = tmp_path / "station.db"
    with open_store(db, key) as store:
        asyncio.run(store.commit_booking(make_booking(), TX))
        asyncio.run(store.backup_now())
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreCorrupt, match="missing but backups exist"):
        Store(db, BlobCipher(key)).open()


def test_backup_command_and_a_damaged_backup_is_skipped(tmp_path: Path) -> None:
    key = new_key()
    config = config_for(tmp_path, key)
    db = tmp_path / "data" / "station.db"
    with open_store(db, key) as store:
        asyncio.run(store.commit_booking(make_booking("GOOD"), TX))
        out = io.StringIO()
        assert backup_command(config, out) == 0  # while the station runs
        asyncio.run(store.commit_booking(make_booking("NEWER"), TX))
    newest = tmp_path / "data" / "backups" / "station-29990101T000000.000000Z.db"
    newest.write_bytes(b"SQLite format 3\0" + b"\x00" * 8000)  # a damaged newest backup
    out = io.StringIO()
    assert restore_backup_command(config, None, out) == 0, out.getvalue()
    assert booking_numbers(db, key) == {"GOOD"}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


async def test_maintain_backs_up_at_start_and_applies_retention(store: Store) -> None:
    txid = await store.commit_booking(make_booking(), TX)
    await store.mark_stored(txid, {"receipt": "R"})
    task = asyncio.create_task(store.maintain(
        grace=timedelta(0), retention=timedelta(days=365), interval=timedelta(seconds=0.05)))

    def purged(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT biometrics_purged_at FROM bookings").fetchone()
        return row[0] is not None

    try:
        for _ in range(200):
            if store.list_backups() and await asyncio.to_thread(store.read, purged):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(store.list_backups()) == 1
    assert await asyncio.to_thread(store.read, purged)
