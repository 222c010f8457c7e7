"""Opening the SQLite file the way the storage rules demand, and migrating it.

WAL so the pages can read while the writer writes; ``synchronous=FULL`` so a committed booking
survives a power cut; ``secure_delete`` so purged biometrics are overwritten, not just unlinked
from the b-tree. A copy of the database is taken before any migration runs.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from appliance.store.errors import StoreCorrupt
from appliance.store.schema import MIGRATIONS

log = logging.getLogger(__name__)


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 UTC strings with microseconds (they sort)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection with the station's pragmas, in autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection for the web pages and CLI reports."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA query_only=ON")
    return conn


def check_integrity(path: Path) -> None:
    """Run ``PRAGMA integrity_check``; a bad file is moved aside and StoreCorrupt raised."""
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        ok = rows == [("ok",)]
        detail = "; ".join(str(r[0]) for r in rows[:5])
    except sqlite3.DatabaseError as exc:
        ok, detail = False, str(exc)
    if ok:
        return
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{aside}{suffix}"))
    raise StoreCorrupt(
        f"database {path} failed its integrity check ({detail}); moved aside to {aside}. "
        "Bookings are refused until a technician restores the backup or starts a new store."
    )


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations already recorded in the database."""
    db = sqlite_utils.Database(conn)
    if "migrations" not in db.table_names():
        return []
    return [row["name"] for row in db["migrations"].rows_where(order_by="applied_at")]


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns their names."""
    db = sqlite_utils.Database(conn)
    if "migrations" not in db.table_names():
        conn.execute(
            "CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
    done = set(applied_migrations(conn))
    pending = [(name, sql) for name, sql in MIGRATIONS if name not in done]
    if pending and done:
        backup = path.with_name(f"{path.name}.pre-{pending[0][0]}")
        backup_database(conn, backup)
        log.info("store: backed up database to %s before migrating", backup)
    for name, sql in pending:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, utcnow())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store: applied migration %s", name)
    return [name for name, _ in pending]


def backup_database(conn: sqlite3.Connection, target: Path) -> None:
    """A consistent copy through SQLite's online backup API."""
    tmp = target.with_name(target.name + ".tmp")
    dest = sqlite3.connect(tmp)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    tmp.replace(target)
    shutil.copymode(target, target)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
