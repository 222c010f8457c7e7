"""The store's kept read connections: reused by a thread, never holding back the WAL, closed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from appliance.store.crypto import BlobCipher
from appliance.store.readers import Readers
from appliance.store.store import Store
from tests.store.conftest import make_booking

TX = b"T" * 2000


def test_a_thread_keeps_its_connection_and_other_threads_get_their_own(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.execute("INSERT INTO t VALUES (1)")
    readers = Readers(db)
    first = readers.run(lambda conn: conn)
    assert readers.run(lambda conn: conn) is first
    seen: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: seen.append(readers.run(lambda conn: conn)))
    worker.start()
    worker.join()
    assert seen and seen[0] is not first
    readers.close()
    # once closed, a read still works, on a connection of its own
    assert readers.run(lambda conn: conn.execute("SELECT n FROM t").fetchone()) == (1,)
    assert readers.run(lambda conn: conn) is not first


async def test_kept_readers_see_every_commit_and_let_the_wal_checkpoint(store: Store,
                                                                         key: bytes) -> None:
    def count(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COUNT(*) FROM bookings").fetchone()[0]

    for n in range(3):
        await store.commit_booking(make_booking(f"R{n}", seed=n), TX)
        assert await asyncio.to_thread(store.read, count) == n + 1  # no stale snapshot

    def left_open(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")  # a careless read that opens a transaction
        conn.execute("SELECT COUNT(*) FROM bookings").fetchone()

    store.read(left_open)
    await store.commit_booking(make_booking("R3", seed=3), TX)

    def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
        return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    busy, _log, _done = await store.write(checkpoint)
    assert busy == 0, "a kept read connection held the WAL back"
    assert store.read(count) == 4
    assert isinstance(store.cipher, BlobCipher) and key
