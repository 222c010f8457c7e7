"""Retention: delivered metadata and old audit entries go, nothing unacknowledged ever does."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.store import audit
from appliance.store.crypto import BlobCipher
from appliance.store.drafts import DraftStore
from appliance.store.store import Store
from tests.store.conftest import make_booking

TX = b"T" * 2000
YEAR = timedelta(days=365)
LATER = datetime.now(UTC) + timedelta(days=400)  # everything written today is past retention


def numbers(store: Store) -> set[str]:
    return {b.booking_number for b in store.bookings(limit=1000)}


async def test_inside_retention_nothing_goes(store: Store) -> None:
    txid = await store.commit_booking(make_booking("A"), TX)
    await store.mark_stored(txid, {"receipt": "R"})
    result = await store.purge_expired_metadata(YEAR)
    assert (result.bookings, result.audit_entries, result.anchor_seq) == (0, 0, 0)
    assert numbers(store) == {"A"} and store.verify_audit().entries == 2


async def test_only_delivered_bookings_past_retention_go(store: Store) -> None:
    stored = await store.commit_booking(make_booking("STORED"), TX)
    await store.commit_booking(make_booking("QUEUED"), TX)
    sending = await store.commit_booking(make_booking("SENDING"), TX)
    rejected = await store.commit_booking(make_booking("REJECTED"), TX)
    late = await store.commit_booking(make_booking("ACKED-LATE"), TX)
    draft = make_booking("DRAFT", prints=1)
    await DraftStore(store).begin(draft)
    await DraftStore(store).accept(draft, draft.impressions[0])
    await store.mark_stored(stored, {"receipt": "R1"})
    await store.mark_sending(sending)
    await store.mark_rejected(rejected, "bad record")
    await store.mark_stored(late, {"receipt": "R2"})
    # central's answer for this one came long after the commit: retention counts from it
    future = (LATER - timedelta(days=10)).isoformat(timespec="microseconds")
    await store.write(lambda c: c.execute(
        "UPDATE outbox SET updated_at = ? WHERE transaction_id = ?", (future, late)))

    result = await store.purge_expired_metadata(YEAR, now=LATER)

    assert result.bookings == 1
    assert numbers(store) == {"QUEUED", "SENDING", "REJECTED", "ACKED-LATE"}
    assert store.outbox_state(stored) is None
    assert await store.load_transaction(sending) == TX
    assert [d.booking_number for d in DraftStore(store).load()] == ["DRAFT"]
    leftovers = store.read(lambda c: [c.execute(
        f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("impressions", "transactions",
                                                             "outbox", "templates")])
    assert leftovers[:3] == [12, 4, 4]
    # the audit chain lost only the entry for the deleted booking's commit, and still verifies
    report = store.verify_audit()
    assert report.ok and report.anchor_seq == 1 and result.anchor_seq == 1
    assert result.audit_entries == 1


async def test_nothing_unacknowledged_is_ever_purged_however_old(store: Store) -> None:
    store.keep_lossless = True  # store.keep_lossless_prints: the purge must erase those too
    kept, delivered = {}, set()
    for n in range(12):
        txid = await store.commit_booking(make_booking(f"B{n}", seed=n), TX + bytes([n]))
        state = n % 4
        if state == 1:
            await store.mark_sending(txid)
        elif state == 2:
            await store.mark_rejected(txid, "no")
        elif state == 3:
            await store.mark_stored(txid, {"receipt": str(n)})
            delivered.add(f"B{n}")
            continue
        kept[txid] = TX + bytes([n])
    ten_years = datetime.now(UTC) + timedelta(days=3650)
    report = await store.run_retention(grace=timedelta(0), retention=YEAR, now=ten_years)
    assert report.biometrics_purged == 3 and report.bookings_deleted == 3
    assert numbers(store) == {f"B{n}" for n in range(12)} - delivered
    for txid, tx in kept.items():
        assert await store.load_transaction(txid) == tx
    images = store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM impressions WHERE image_enc IS NOT NULL").fetchone()[0])
    assert images == 9 * 3
    assert store.verify_audit().ok


async def test_audit_prefix_goes_with_an_anchor_that_verify_starts_from(store: Store) -> None:
    for n in range(10):
        await store.audit("technician:ann", "login", {"n": n})
    tenth = store.read(lambda c: c.execute("SELECT hash FROM audit_log WHERE seq = 10"
                                           ).fetchone()[0])
    result = await store.purge_expired_metadata(YEAR, now=LATER)
    assert (result.audit_entries, result.anchor_seq) == (10, 10)
    report = store.verify_audit()
    assert report.ok and report.entries == 1 and report.anchor_seq == 10
    assert store.read(audit.anchor) == (10, tenth)
    await store.audit("technician:ann", "login", {"n": 10})
    assert store.read(audit.head)[0] == 12 and store.verify_audit().ok

    async def tampered(*statements: str) -> audit.ChainReport:
        def run(conn):
            conn.execute("SAVEPOINT t")
            for sql in statements:
                conn.execute(sql)
            report = audit.verify(conn)
            conn.execute("ROLLBACK TO t")
            conn.execute("RELEASE t")
            return report
        return await store.write(run)

    forged_anchor = json.dumps({"seq": 10, "hash": "f" * 64, "at": "x"})
    moved = await tampered(f"UPDATE settings SET value = '{forged_anchor}'"
                           " WHERE key = 'audit_anchor'")
    assert not moved.ok and moved.first_bad_seq == 11
    cut = await tampered("DELETE FROM audit_log WHERE seq = 11")
    assert not cut.ok and cut.first_bad_seq == 11 and "missing" in cut.problem
    assert store.verify_audit().ok


async def test_retention_hands_space_back(store: Store, tmp_path: Path) -> None:
    big = os.urandom(200_000)
    for n in range(25):
        txid = await store.commit_booking(make_booking(f"S{n}", seed=n), big)
        await store.mark_stored(txid, {"receipt": str(n)})
    await store.write(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    before = store.path.stat().st_size
    report = await store.run_retention(grace=timedelta(0), retention=YEAR, now=LATER)
    assert report.bookings_deleted == 25 and report.pages_reclaimed > 0
    after = store.path.stat().st_size
    assert after < before / 4
    assert Path(f"{store.path}-wal").stat().st_size == 0
    assert store.read(lambda c: c.execute("PRAGMA freelist_count").fetchone()[0]) == 0


async def test_a_store_from_before_auto_vacuum_is_converted_once(tmp_path: Path, key) -> None:
    import sqlite3

    from appliance.store.database import migrate

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # as the foundation created it: no auto_vacuum
    migrate(conn, path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    conn.close()
    store = Store(path, BlobCipher(key))
    store.open()
    try:
        txid = await store.commit_booking(make_booking(), os.urandom(100_000))
        await store.mark_stored(txid, {"receipt": "R"})
        report = await store.run_retention(grace=timedelta(0), retention=YEAR, now=LATER)
        assert report.bookings_deleted == 1
        assert store.read(lambda c: c.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
        assert store.verify_audit().ok
    finally:
        store.close()
