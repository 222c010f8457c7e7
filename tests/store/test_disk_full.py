"""A data disk that fills up: the guard refuses first; if SQLite still meets ENOSPC, the commit
fails with DiskFull and nothing stored earlier is damaged.

The test mounts its own small filesystem (a 16 MiB tmpfs, else a loop-mounted ext4 image), which
needs root; it skips, saying why, where neither can be mounted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store.crypto import BlobCipher
from appliance.store.errors import DiskFull
from appliance.store.store import Store
from tests.store.conftest import make_booking

SIZE_MB = 16
# One commit can grow the database file by what the WAL held since the last checkpoint (up to
# ~4 MiB at SQLite's default of 1000 pages) plus the booking itself: the floor must cover that.
FLOOR_MB = 6


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    tried = []
    done = _run("mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs",
                str(mount_point))
    if done.returncode != 0:
        tried.append(f"tmpfs: {done.stderr.strip() or done.returncode}")
        image = tmp_path / "disk.img"
        with open(image, "wb") as f:
            f.truncate(SIZE_MB * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", str(image)) if shutil.which("mkfs.ext4") else None
        done = _run("mount", "-o", "loop", str(image), str(mount_point)) if made and \
            made.returncode == 0 else None
        if done is None or done.returncode != 0:
            tried.append(f"loop ext4: {done.stderr.strip() if done else 'mkfs.ext4 failed'}")
            pytest.skip("cannot mount a small filesystem here (needs root): " + "; ".join(tried))
    try:
        yield mount_point
    finally:
        _run("umount", "-l", str(mount_point))


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


async def test_guard_refuses_new_bookings_before_the_disk_runs_out(small_disk: Path,
                                                                   key: bytes) -> None:
    store = Store(small_disk / "station.db", BlobCipher(key), min_free_mb=FLOOR_MB)
    store.open()
    committed = {}
    try:
        with pytest.raises(DiskFull) as refused:
            for n in range(100):
                tx = os.urandom(300_000)
                committed[await store.commit_booking(make_booking(f"G{n}", seed=n), tx)] = tx
        assert "new bookings are refused" in str(refused.value)
        assert refused.value.__cause__ is None  # the guard said no, SQLite never failed
        assert free_bytes(small_disk) > 1024 * 1024  # space was still there
        assert len(committed) >= 3
        for txid, tx in committed.items():
            assert await store.load_transaction(txid) == tx
        assert store.verify_audit().ok
    finally:
        store.close()


async def test_sqlite_disk_full_is_a_clean_diskfull_and_damages_nothing(small_disk: Path,
                                                                        key: bytes) -> None:
    # room to give back later: enough for one more booking plus the checkpoint at close, which
    # can grow the database file by what the WAL holds (see FLOOR_MB)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 5 * 1024 * 1024)
    store = Store(small_disk / "station.db", BlobCipher(key), min_free_mb=0)  # no guard
    store.open()
    committed: dict[str, bytes] = {}
    try:
        with pytest.raises(DiskFull) as full:
            for n in range(100):
                tx = os.urandom(250_000)
                committed[await store.commit_booking(make_booking(f"F{n}", seed=n), tx)] = tx
        assert "disk is full" in str(full.value)
        cause = full.value.__cause__
        assert isinstance(cause, sqlite3.OperationalError)
        assert "database or disk is full" in str(cause)
        assert len(committed) >= 3

        # nothing earlier is damaged, while the disk is still full
        assert store.read(lambda c: c.execute("PRAGMA integrity_check").fetchall()) == [("ok",)]
        for txid, tx in committed.items():
            assert await store.load_transaction(txid) == tx
        assert len(store.bookings(limit=1000)) == len(committed)
        assert store.verify_audit().ok

        # space comes back: the same store takes bookings again
        filler.unlink()
        tx = b"after" * 100
        committed[await store.commit_booking(make_booking("AFTER"), tx)] = tx
    finally:
        store.close()
    store = Store(small_disk / "station.db", BlobCipher(key))
    store.open()
    try:
        for txid, tx in committed.items():
            assert await store.load_transaction(txid) == tx
        assert store.verify_audit().ok
    finally:
        store.close()
