"""Migrations: recorded by name, run in order, each in a transaction, a copy taken first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.store.crypto import BlobCipher
from appliance.store.database import applied_migrations, connect, migrate
from appliance.store.schema import MIGRATIONS
from appliance.store.store import Store
from tests.store.conftest import make_booking


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_new_store_records_every_migration_by_name_in_order(tmp_path: Path, key) -> None:
    path = tmp_path / "station.db"
    store = Store(path, BlobCipher(key))
    store.open()
    store.close()
    conn = connect(path)
    try:
        assert applied_migrations(conn) == [name for name, _ in MIGRATIONS]
        assert migrate(conn, path) == []  # nothing runs twice
    finally:
        conn.close()
    assert not list(tmp_path.glob("station.db.pre-*"))  # nothing to copy on a new store


def test_migrations_run_in_order_and_a_failing_one_leaves_the_database_as_before(
        tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    steps = [
        ("0001_people", "CREATE TABLE people (id INTEGER PRIMARY KEY)"),
        ("0002_names", "ALTER TABLE people ADD COLUMN name TEXT"),  # needs 0001 first
    ]
    broken = ("0003_broken", "CREATE TABLE pets (id INTEGER); "
                             "INSERT INTO people (name) VALUES ('a'); "
                             "INSERT INTO no_such_table VALUES (1)")
    conn = connect(path)
    try:
        assert migrate(conn, path, steps) == ["0001_people", "0002_names"]
        before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            migrate(conn, path, [*steps, broken, ("0004_after", "CREATE TABLE later (x)")])
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
        assert "pets" not in tables(conn) and "later" not in tables(conn)
        assert conn.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 0
        assert applied_migrations(conn) == ["0001_people", "0002_names"]
        fixed = ("0003_broken", "CREATE TABLE pets (id INTEGER)")
        assert migrate(conn, path, [*steps, fixed]) == ["0003_broken"]
        assert applied_migrations(conn) == ["0001_people", "0002_names", "0003_broken"]
    finally:
        conn.close()


async def test_an_existing_store_is_copied_before_it_is_migrated(tmp_path: Path, key) -> None:
    path = tmp_path / "station.db"
    conn = connect(path)
    migrate(conn, path, MIGRATIONS[:-1])  # a store written by the previous release
    conn.close()
    last = MIGRATIONS[-1][0]

    store = Store(path, BlobCipher(key))
    store.open()
    try:
        await store.commit_booking(make_booking(), b"T")
    finally:
        store.close()

    copy = tmp_path / f"station.db.pre-{last}"
    assert copy.exists()
    old = sqlite3.connect(copy)
    try:
        assert old.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert applied_migrations(old) == [name for name, _ in MIGRATIONS[:-1]]
    finally:
        old.close()
    conn = connect(path)
    try:
        assert applied_migrations(conn)[-1] == last
    finally:
        conn.close()
