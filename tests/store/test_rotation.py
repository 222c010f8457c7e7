"""Key rotation: every blob re-sealed under the new key; an interrupted rotation loses nothing."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.cli.store import rotate_key_command
from appliance.store import audit
from appliance.store.crypto import BlobCipher, key_id_of, new_key
from appliance.store.drafts import DraftStore
from appliance.store.errors import UnknownKey
from appliance.store.rotation import BLOB_TABLES, key_usage, progress
from appliance.store.store import Store
from tests.store.conftest import make_booking

CHILD = Path(__file__).resolve().parent / "crash_child.py"
REPO = Path(__file__).resolve().parents[2]


def open_every_blob(db: Path, cipher: BlobCipher) -> int:
    """Decrypt every blob of every table with its row's key; returns how many opened."""
    conn = sqlite3.connect(db, isolation_level=None)
    opened = 0
    try:
        for key_id in key_usage(conn):
            for table in BLOB_TABLES:
                for row in conn.execute(table.select, (key_id, -1)).fetchall():
                    for _, blob, aad in table.blobs(row):
                        if blob is not None:
                            cipher.open(blob, key_id, aad)
                            opened += 1
    finally:
        conn.close()
    return opened


async def fill(store: Store, bookings: int = 10) -> dict[str, bytes]:
    """Bookings with templates (some delivered and purged) and a draft; returns txid -> bytes."""
    sent = {}
    for n in range(bookings):
        booking = make_booking(f"ROT-{n}", prints=3, seed=n)
        tx = f"TX-{n}".encode() * 200
        templates = {booking.impressions[0].impression_id: {"iso19794-2": b"FMR" + bytes([n])}}
        txid = await store.commit_booking(booking, tx, templates=templates)
        sent[txid] = tx
        if n % 4 == 0:
            await store.mark_stored(txid, {"receipt": f"R{n}"})
    await store.purge_delivered(timedelta(0))
    draft = make_booking("ROT-DRAFT", prints=2, seed=99)
    drafts = DraftStore(store)
    await drafts.begin(draft)
    for imp in draft.impressions:
        await drafts.accept(draft, imp)
    return sent


async def test_rotation_killed_mid_way_then_resumed_loses_nothing(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    db = tmp_path / "station.db"
    store = Store(db, BlobCipher(old))
    store.open()
    sent = await fill(store)
    store.close()
    total_rows = sum(open_sqlite_usage(db).values())
    blobs = open_every_blob(db, BlobCipher(old))

    child = subprocess.Popen(
        [sys.executable, str(CHILD), "rotate", str(db), old.hex(), new.hex(), "2", "0.05"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    seen = []
    for line in child.stdout:
        seen.append(line.strip())
        if line.startswith("batch 3 "):
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL, (seen, child.stderr.read() if child.stderr else "")

    usage = open_sqlite_usage(db)
    assert set(usage) == {key_id_of(old), key_id_of(new)}, "the kill should leave it half-done"
    conn = sqlite3.connect(db)
    half = progress(conn)
    conn.close()
    assert half is not None and half.to_key_id == key_id_of(new) and half.rows_done >= 6
    assert usage[key_id_of(new)] == half.rows_done  # progress committed with each batch
    both = BlobCipher(new, previous=[old])
    assert open_every_blob(db, both) == blobs  # a half-rotated store opens with both keys
    with pytest.raises(UnknownKey):
        open_every_blob(db, BlobCipher(new))

    store = Store(db, both)
    store.open()
    try:
        report = await store.rotate_key(batch_rows=5)
        assert report.completed and report.rows_total == total_rows
        assert report.rows_rotated == total_rows - half.rows_done
        assert report.from_key_ids == (key_id_of(old),)
        assert store.key_usage() == {key_id_of(new): total_rows}
        assert store.rotation_progress() is None
        entries = store.read(lambda c: c.execute(
            "SELECT detail FROM audit_log WHERE action = 'store_key_rotated'").fetchall())
        assert len(entries) == 1 and key_id_of(new) in entries[0][0]
        assert store.verify_audit().ok
    finally:
        store.close()

    store = Store(db, BlobCipher(new))  # the old key is retired
    store.open()
    try:
        assert open_every_blob(db, BlobCipher(new)) == blobs
        for txid, tx in sent.items():
            if store.outbox_state(txid) != "stored":
                assert await store.load_transaction(txid) == tx
        assert sorted(b.booking_number for b in store.bookings()) == sorted(
            f"ROT-{n}" for n in range(10))
        [draft] = DraftStore(store).load()
        assert draft.booking_number == "ROT-DRAFT" and len(draft.impressions) == 2
        again = await store.rotate_key()
        assert again.completed and again.rows_rotated == 0 and again.from_key_ids == ()
    finally:
        store.close()


def open_sqlite_usage(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return key_usage(conn)
    finally:
        conn.close()


async def test_rotation_refuses_when_rows_name_a_key_not_loaded(tmp_path: Path) -> None:
    a, b, c = new_key(), new_key(), new_key()
    store = Store(tmp_path / "station.db", BlobCipher(a))
    store.open()
    await store.commit_booking(make_booking(), b"T" * 100)
    store.close()
    store = Store(tmp_path / "station.db", BlobCipher(c, previous=[b]))
    store.open()
    try:
        with pytest.raises(UnknownKey, match=key_id_of(a)):
            await store.rotate_key()
        assert store.key_usage() == {key_id_of(a): sum(store.key_usage().values())}
    finally:
        store.close()


def write_config(tmp_path: Path, key_file: Path | None) -> Path:
    config = tmp_path / "config.toml"
    lines = ["[station]", f'data_dir = "{tmp_path / "data"}"', "[store]"]
    if key_file is not None:
        lines.append(f'key_file = "{key_file}"')
    config.write_text("\n".join(lines) + "\n")
    return config


def write_key(path: Path, key: bytes) -> Path:
    path.write_text(key.hex() + "\n")
    path.chmod(0o600)
    return path


async def test_rotate_key_command_with_a_new_key_file(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    config = write_config(tmp_path, write_key(tmp_path / "db.key", old))
    db = tmp_path / "data" / "station.db"
    store = Store(db, BlobCipher(old))
    store.open()
    sent = await fill(store, bookings=4)
    await store.backup_now()
    store.close()

    conn = sqlite3.connect(db)
    old_ciphertexts = [r[0][:64] for r in conn.execute(
        "SELECT data_enc FROM transactions WHERE data_enc IS NOT NULL UNION ALL"
        " SELECT image_enc FROM impressions WHERE image_enc IS NOT NULL")]
    conn.close()
    out = io.StringIO()
    rc = await asyncio.to_thread(rotate_key_command, config,
                                write_key(tmp_path / "db.key.new", new), out, batch_rows=3)
    assert rc == 0, out.getvalue()
    text = out.getvalue()
    assert f"every row is now under key {key_id_of(new)}" in text
    assert "1 older backup(s) still need the old key" in text
    assert "next: install" in text
    assert open_sqlite_usage(db) == {key_id_of(new): sum(open_sqlite_usage(db).values())}
    live = b"".join(p.read_bytes() for p in db.parent.iterdir()
                    if p.name.startswith("station.db") and p.is_file())
    assert old_ciphertexts and not [c for c in old_ciphertexts if c in live]
    store = Store(db, BlobCipher(new))
    store.open()
    try:
        for txid, tx in sent.items():
            if store.outbox_state(txid) != "stored":
                assert await store.load_transaction(txid) == tx
        assert len(store.list_backups()) == 2  # the fresh one is under the new key
        assert set(open_sqlite_usage(store.list_backups()[-1])) == {key_id_of(new)}
    finally:
        store.close()


async def test_rotate_key_command_with_systemd_credentials(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_key(), new_key()
    db = tmp_path / "data" / "station.db"
    store = Store(db, BlobCipher(old))
    store.open()
    await fill(store, bookings=3)
    store.close()
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "booking-station-db-key").write_bytes(new)  # raw 32 bytes
    (creds / "booking-station-db-key.previous").write_text(old.hex())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    out = io.StringIO()
    rc = await asyncio.to_thread(rotate_key_command, write_config(tmp_path, None), None, out)
    assert rc == 0, out.getvalue()
    assert "booking-station-db-key.previous" in out.getvalue()
    assert set(open_sqlite_usage(db)) == {key_id_of(new)}
    conn = sqlite3.connect(db)
    assert audit.verify(conn).ok
    conn.close()


def test_rotate_key_command_refuses_a_running_station(tmp_path: Path) -> None:
    old = new_key()
    config = write_config(tmp_path, write_key(tmp_path / "db.key", old))
    store = Store(tmp_path / "data" / "station.db", BlobCipher(old))
    store.open()
    try:
        out = io.StringIO()
        rc = rotate_key_command(config, write_key(tmp_path / "new.key", new_key()), out)
        assert rc == 1 and "in use by another process" in out.getvalue()
    finally:
        store.close()


async def test_rotate_key_command_without_a_second_key_says_what_to_do(tmp_path: Path) -> None:
    key = new_key()
    config = write_config(tmp_path, write_key(tmp_path / "db.key", key))
    store = Store(tmp_path / "data" / "station.db", BlobCipher(key))
    store.open()
    await store.commit_booking(make_booking(), b"T" * 100)
    store.close()
    out = io.StringIO()
    assert await asyncio.to_thread(rotate_key_command, config, None, out) == 0
    assert "nothing to rotate" in out.getvalue() and "--new-key-file" in out.getvalue()
    # rows under a key that is not configured: refused, nothing touched
    write_key(tmp_path / "db.key", new_key())
    out = io.StringIO()
    assert await asyncio.to_thread(rotate_key_command, config, None, out) == 1
    assert f"key id(s) {key_id_of(key)}" in out.getvalue()
    assert set(open_sqlite_usage(tmp_path / "data" / "station.db")) == {key_id_of(key)}
