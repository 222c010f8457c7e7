from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.store import audit
from appliance.store.crypto import BlobCipher
from appliance.store.drafts import DraftStore
from appliance.store.errors import DecryptionFailed, DiskFull, StoreCorrupt
from appliance.store.store import Store, encode_png
from tests.store.conftest import SUBJECT, make_booking

TX = b"1.001:..." + b"T" * 5000


async def test_booking_commit_is_readable_and_queued(store: Store) -> None:
    booking = make_booking()
    txid = await store.commit_booking(booking, TX)
    assert store.outbox_state(txid) == "queued"
    assert await store.load_transaction(txid) == TX
    [summary] = store.bookings()
    assert summary.booking_number == "BK-77123" and summary.impressions == 3
    assert summary.state == "queued"


async def test_raw_database_and_wal_hold_no_biometric_or_personal_bytes(store: Store, tmp_path):
    booking = make_booking()
    await store.commit_booking(booking, TX, templates={
        booking.impressions[0].impression_id: {"iso19794-2": b"FMR\0TEMPLATE-SECRET"}})
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("station.db"))
    needles = [SUBJECT.last_name.encode(), SUBJECT.first_name.encode(), b"BK-77123",
               b"TEMPLATE-SECRET", TX[:200]]
    needles += [encode_png(i.image)[40:200] for i in booking.impressions]
    needles += [i.image.tobytes()[:64] for i in booking.impressions]
    for needle in needles:
        assert needle not in raw


async def test_failed_commit_leaves_nothing_behind(store: Store) -> None:
    booking = make_booking()
    booking.impressions.append(booking.impressions[0])  # duplicate primary key inside the commit
    with pytest.raises(sqlite3.IntegrityError):
        await store.commit_booking(booking, TX)

    def counts(conn):
        return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("bookings", "impressions", "transactions", "outbox")]

    assert store.read(counts) == [0, 0, 0, 0]
    assert store.verify_audit().ok


async def test_outbox_order_priority_then_fifo(store: Store) -> None:
    a = await store.commit_booking(make_booking("A"), TX, priority=5)
    b = await store.commit_booking(make_booking("B"), TX, priority=1)
    c = await store.commit_booking(make_booking("C"), TX, priority=5)
    due = await store.outbox_due(10)
    assert [i.transaction_id for i in due] == [b, a, c]
    assert [i.transaction_id for i in await store.outbox_due(10, frozenset({b}))] == [a, c]


async def test_only_stored_ends_delivery_and_answers_are_final(store: Store) -> None:
    txid = await store.commit_booking(make_booking(), TX)
    await store.mark_sending(txid)
    await store.mark_retry(txid, 0, "link down")
    assert store.outbox_state(txid) == "queued"
    assert await store.mark_stored(txid, {"receipt": "R-1"})
    assert store.outbox_state(txid) == "stored"
    assert not await store.mark_rejected(txid, "too late")
    assert store.outbox_state(txid) == "stored"


async def test_sending_is_requeued_after_restart(tmp_path: Path, key: bytes) -> None:
    s = Store(tmp_path / "station.db", BlobCipher(key))
    s.open()
    txid = await s.commit_booking(make_booking(), TX)
    await s.mark_sending(txid)
    s.close()
    s2 = Store(tmp_path / "station.db", BlobCipher(key))
    s2.open()
    try:
        assert s2.outbox_state(txid) == "queued"
    finally:
        s2.close()


async def test_wrong_key_cannot_read(tmp_path: Path, key: bytes) -> None:
    s = Store(tmp_path / "station.db", BlobCipher(key))
    s.open()
    txid = await s.commit_booking(make_booking(), TX)
    s.close()
    other = Store(tmp_path / "station.db", BlobCipher(b"\x01" * 32, previous=[b"\x02" * 32]))
    other.open()
    try:
        with pytest.raises(Exception, match="no key loaded"):
            await other.load_transaction(txid)
    finally:
        other.close()


async def test_blob_moved_to_another_row_does_not_open(store: Store) -> None:
    t1 = await store.commit_booking(make_booking("A"), TX)
    t2 = await store.commit_booking(make_booking("B"), b"other")

    def swap(conn):
        blob = conn.execute("SELECT data_enc FROM transactions WHERE transaction_id = ?",
                            (t1,)).fetchone()[0]
        conn.execute("UPDATE transactions SET data_enc = ? WHERE transaction_id = ?", (blob, t2))

    await store.write(swap)
    with pytest.raises(DecryptionFailed):
        await store.load_transaction(t2)


async def test_disk_guard_refuses_and_keeps_everything(tmp_path: Path, key: bytes) -> None:
    s = Store(tmp_path / "station.db", BlobCipher(key), min_free_mb=0)
    s.open()
    try:
        txid = await s.commit_booking(make_booking(), TX)
        s.min_free_mb = 10**9  # more than any disk has
        with pytest.raises(DiskFull, match="refused"):
            await s.commit_booking(make_booking("B"), TX)
        assert s.outbox_state(txid) == "queued"
        assert len(s.bookings()) == 1
    finally:
        s.close()


async def test_purge_after_grace_keeps_metadata_and_skips_unacknowledged(store: Store) -> None:
    store.keep_lossless = True  # store.keep_lossless_prints: the purge must erase those too
    sent = await store.commit_booking(make_booking("A"), TX)
    unsent = await store.commit_booking(make_booking("B"), TX)
    await store.mark_stored(sent, {"receipt": "R-9"})
    assert await store.purge_delivered(timedelta(hours=1)) == 0  # still inside the grace period
    assert await store.purge_delivered(timedelta(0)) == 1
    with pytest.raises(KeyError, match="purged"):
        await store.load_transaction(sent)
    assert await store.load_transaction(unsent) == TX
    assert {b.booking_number for b in store.bookings()} == {"A", "B"}

    def images(conn):
        return conn.execute("SELECT COUNT(*) FROM impressions WHERE image_enc IS NOT NULL"
                            ).fetchone()[0]

    assert store.read(images) == 3
    assert store.verify_audit().ok


async def test_a_committed_booking_keeps_its_prints_only_in_the_transaction(store: Store) -> None:
    """By default the lossless PNGs serve the draft and the build; the commit drops them."""
    drafts = DraftStore(store)
    booking = make_booking(prints=3)
    await drafts.begin(booking)
    for imp in booking.impressions:
        await drafts.accept(booking, imp)
    templates = {imp.impression_id: {"iso19794-2": b"T" * 40} for imp in booking.impressions}
    txid = await store.commit_booking(booking, TX, templates=templates)

    def blobs(conn: sqlite3.Connection) -> tuple[int, int, int, int, int]:
        one = [conn.execute(sql).fetchone()[0] for sql in (
            "SELECT COUNT(*) FROM impressions",
            "SELECT COUNT(*) FROM impressions WHERE image_enc IS NOT NULL",
            "SELECT COUNT(*) FROM templates WHERE data_enc IS NOT NULL",
            "SELECT COUNT(*) FROM draft_impressions",
        )]
        return (*one, conn.execute("SELECT SUM(LENGTH(image_enc)) FROM impressions").fetchone()[0])

    assert store.read(blobs) == (3, 0, 3, 0, None)
    assert await store.load_transaction(txid) == TX


async def test_drafts_survive_restart_and_vanish_on_commit(tmp_path: Path, key: bytes) -> None:
    s = Store(tmp_path / "station.db", BlobCipher(key))
    s.open()
    drafts = DraftStore(s)
    booking = make_booking(prints=2)
    await drafts.begin(booking)
    for imp in booking.impressions:
        await drafts.accept(booking, imp)
    s.close()  # power cut after two accepted prints
    s = Store(tmp_path / "station.db", BlobCipher(key))
    s.open()
    try:
        drafts = DraftStore(s)
        [found] = drafts.load()
        assert found.booking_number == booking.booking_number
        assert found.subject.last_name == SUBJECT.last_name
        assert sorted(i.position for i in found.impressions) == [1, 2]
        original = {i.impression_id: i.image for i in booking.impressions}
        for imp in found.impressions:
            assert (imp.image == original[imp.impression_id]).all()
        await s.commit_booking(found, TX)
        assert drafts.load() == []
    finally:
        s.close()


def test_corrupt_file_is_moved_aside(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "station.db"
    path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)
    with pytest.raises(StoreCorrupt, match="moved aside"):
        Store(path, BlobCipher(key)).open()
    assert not path.exists()
    assert any(p.name.startswith("station.db.corrupt-") for p in tmp_path.iterdir())


async def test_audit_chain_detects_edit_removal_insertion_reorder(store: Store) -> None:
    for n in range(5):
        await store.audit("officer", "capture", {"n": n})
    assert store.verify_audit().ok and store.verify_audit().entries == 5

    async def tamper(*statements: str) -> audit.ChainReport:
        def run(conn):
            conn.execute("SAVEPOINT t")
            for sql in statements:
                conn.execute(sql)
            report = audit.verify(conn)
            conn.execute("ROLLBACK TO t")
            conn.execute("RELEASE t")
            return report
        return await store.write(run)

    edited = await tamper("UPDATE audit_log SET detail = '{\"n\":99}' WHERE seq = 3")
    assert not edited.ok and edited.first_bad_seq == 3
    removed = await tamper("DELETE FROM audit_log WHERE seq = 2")
    assert not removed.ok and removed.first_bad_seq == 2
    # a forged entry whose hash is right for its content and links to entry 3
    row = store.read(lambda c: c.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchone())
    forged_at = "2026-01-01T00:00:00+00:00"
    forged_hash = audit.entry_hash(4, forged_at, "officer", "capture", "{}", row[0])
    inserted = await tamper(
        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4",
        "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100",
        f"INSERT INTO audit_log VALUES (4, '{forged_at}', 'officer', 'capture', '{{}}',"
        f" '{row[0]}', '{forged_hash}')",
    )
    assert not inserted.ok and inserted.first_bad_seq == 5
    reordered = await tamper(
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    )
    assert not reordered.ok and reordered.first_bad_seq == 2
    assert store.verify_audit().ok


async def test_commit_reuses_the_png_encoded_at_acceptance(store: Store, monkeypatch) -> None:
    """Each accepted print is PNG-encoded once: for its draft; the commit reuses those bytes."""
    import appliance.store.store as store_module

    store.keep_lossless = True  # store.keep_lossless_prints
    calls: list[tuple[int, int]] = []

    def counting(image):
        calls.append(image.shape)
        return encode_png(image)

    monkeypatch.setattr(store_module, "encode_png", counting)
    drafts = DraftStore(store)
    booking = make_booking(prints=3)
    await drafts.begin(booking)
    for imp in booking.impressions:
        await drafts.accept(booking, imp)
    assert len(calls) == 3
    await store.commit_booking(booking, TX)
    assert len(calls) == 3  # no second encoding at submit
    assert store._lossless == {}  # nothing kept once the booking is committed

    def stored(conn: sqlite3.Connection) -> list[tuple[str, bytes, str]]:
        return conn.execute("SELECT impression_id, image_enc, key_id FROM impressions").fetchall()

    from appliance.store.crypto import associated_data

    for impression_id, blob, key_id in store.read(stored):
        aad = associated_data(booking.booking_id, impression_id, "image")
        png = store.cipher.open(blob, key_id, aad)
        image = next(i.image for i in booking.impressions if i.impression_id == impression_id)
        assert png == encode_png(image)
    other = make_booking("BK-2", prints=2, seed=5)  # never drafted: encoded at the commit
    await store.commit_booking(other, TX)
    assert len(calls) == 5


def test_the_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    import asyncio
    import os
    import stat

    from appliance.store.crypto import new_key

    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "new" / "deeper" / "station.db", BlobCipher(new_key()))
        store.open()
        try:
            asyncio.run(store.commit_booking(make_booking("PRIV-1"), b"T" * 100))
        finally:
            store.close()
    finally:
        os.umask(old)
    for folder in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    made = [p for p in (tmp_path / "new" / "deeper").iterdir() if p.is_file()]
    assert any(p.name == "station.db" for p in made)
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
