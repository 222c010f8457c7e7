"""Opening the SQLite file the way the storage rules demand, and migrating it.

WAL so the pages can read while the writer writes; ``synchronous=FULL`` so a committed booking
survives a power cut; ``secure_delete`` so purged biometrics are overwritten, not just unlinked
from the b-tree; ``auto_vacuum=INCREMENTAL`` (set before the first table exists) so retention can
hand freed pages back to the filesystem without a full VACUUM. A copy of the database is taken
before any migration runs on an existing store.

A database that fails its integrity check is moved aside and a marker file left beside it: until
a technician restores a backup or starts a new store, every start refuses, rather than quietly
creating an empty store and forgetting the bookings that were waiting to be sent.

Only damage is corruption. SQLite answers "disk I/O error" or "database or disk is full" when it
cannot create its WAL and shared-memory files on a full disk; those are reported as a full disk
(or an unreadable store) and never quarantine a sound file. The whole-file check runs at start
only when the last stop was not clean (no stamp matching the file, see :func:`stop_stamp`), so
start-up does not grow with the store; the station checks the whole file again when idle.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from appliance.store.errors import (
    DiskFull,
    StoreCorrupt,
    StoreUnavailable,
    is_corruption,
    is_disk_full,
)
from appliance.store.schema import MIGRATIONS

log = logging.getLogger(__name__)

#: SQLite's value for ``PRAGMA auto_vacuum = INCREMENTAL``.
AUTO_VACUUM_INCREMENTAL = 2


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 UTC strings with microseconds (they sort)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def private_folder(folder: Path) -> None:
    """Make ``folder`` (and missing parents) readable by this user only, whatever the umask.

    Folders that exist are left as they are: a data folder others can read is refused by
    ``check-config`` with the command that fixes it, not changed behind the technician's back.
    """
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700, exist_ok=True)
        os.chmod(created, 0o700)  # mkdir's mode is cut by the umask


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist.

    SQLite gives its WAL and shared-memory files the mode of the database file.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection with the station's pragmas, in autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=30)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes effect on a new, empty file
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def connect_readonly(path: Path, *, shared: bool = False) -> sqlite3.Connection:
    """A read-only connection for the web pages and CLI reports.

    ``shared``: usable from a thread other than its opener's (the caller serialises its use).
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30,
                           check_same_thread=not shared)
    conn.execute("PRAGMA query_only=ON")
    return conn


def marker_path(path: Path) -> Path:
    """The file whose presence means: this store needs a technician before it opens again."""
    return path.with_name(path.name + ".needs-technician")


#: Below this many free bytes an I/O error from SQLite is taken for a full disk.
NEAR_FULL_BYTES = 1024 * 1024


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (its folder when it does not exist)."""
    return shutil.disk_usage(path if path.is_dir() else path.parent).free


def disk_full_error(path: Path, exc: BaseException | None = None) -> DiskFull:
    """A DiskFull that says how much space the store needs to open."""
    free = free_bytes(path)
    need_mb = max(1, (NEAR_FULL_BYTES - free + 2**20 - 1) // 2**20)
    err = DiskFull(f"disk full: {need_mb} MB needed on the data disk to open the store "
                   f"({free // 1024} KiB free); nothing stored was changed")
    err.__cause__ = exc
    return err


def not_corruption(path: Path, exc: BaseException) -> DiskFull | StoreUnavailable:
    """What an error met while opening a store is, when SQLite did not say the file is damaged."""
    no_space = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if no_space or is_disk_full(exc) or free_bytes(path) < NEAR_FULL_BYTES:
        return disk_full_error(path, exc)
    err = StoreUnavailable(f"the store {path} could not be opened ({exc}); it was not changed")
    err.__cause__ = exc
    return err


def integrity_problems(path: Path, *, quick: bool = False) -> str:
    """Empty when ``PRAGMA integrity_check`` (or ``quick_check``) passes, else what it found.

    Raises DiskFull or StoreUnavailable when the check could not run for another reason (a full
    disk, a file it may not read): that says nothing about the file's content.
    """
    pragma = "quick_check" if quick else "integrity_check"
    try:
        # read-write open: after a crash, reading the WAL may need to rebuild its index
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
        try:
            rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            return str(exc)
        raise not_corruption(path, exc) from exc
    if rows == [("ok",)]:
        return ""
    return "; ".join(str(r[0]) for r in rows[:5])


def check_integrity(path: Path) -> None:
    """Run ``PRAGMA integrity_check``; a bad file is moved aside and StoreCorrupt raised.

    The marker goes first: when it cannot be written (a full disk), the file stays where it is,
    StoreCorrupt says so, and the next start checks it again; nothing is raised but StoreError.
    """
    if not path.exists():
        return
    detail = integrity_problems(path)
    if not detail:
        return
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    message = (
        f"database {path} failed its integrity check ({detail}); moved aside to {aside}. "
        "Bookings are refused until a technician restores the backup or starts a new store."
    )
    # the marker first: a crash between the two steps must still leave the store refused
    try:
        write_durably(marker_path(path), (message + "\n").encode())
    except OSError as exc:
        raise StoreCorrupt(
            f"database {path} failed its integrity check ({detail}); it was left in place "
            f"because the marker could not be written ({exc}). Bookings are refused; free space "
            "on the data disk, then restore the backup or start a new store."
        ) from exc
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{aside}{suffix}"))
    fsync_dir(path.parent)
    raise StoreCorrupt(message)


# ---- the clean-stop stamp --------------------------------------------------------------------


def stamp_path(path: Path) -> Path:
    """The file that says: the store was closed cleanly, and this is how it looked then."""
    return path.with_name(path.name + ".clean-stop")


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def stop_stamp(path: Path) -> None:
    """After a clean close: record the file as it is, so the next start may skip the full check.

    Best effort: without the stamp the next start checks the whole file, which is only slower.
    """
    if not path.exists() or Path(f"{path}-wal").exists():
        return
    try:
        write_durably(stamp_path(path), json.dumps(_fingerprint(path)).encode())
    except OSError as exc:
        log.warning("store: no clean-stop stamp (%s); the next start checks the whole file", exc)


def stopped_cleanly(path: Path) -> bool:
    """True when the stamp matches the file: closed cleanly, and not written since.

    The stamp is removed (which needs no space), so a crash of this run leaves none behind.
    """
    stamp = stamp_path(path)
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        recorded = None
    stamp.unlink(missing_ok=True)
    wal = Path(f"{path}-wal")
    if recorded is None or not path.exists() or (wal.exists() and wal.stat().st_size > 0):
        return False
    return bool(recorded == _fingerprint(path))


def refuse_if_unresolved(path: Path, backups_dir: Path) -> None:
    """Raise StoreCorrupt while a corrupt store awaits a technician, or the file is missing.

    A missing database beside existing backups is not a first start: the file was lost, and a
    new empty store would hide the bookings the backups still hold.
    """
    marker = marker_path(path)
    if marker.exists():
        reason = marker.read_text(errors="replace").strip()
        raise StoreCorrupt(
            f"{reason} (run 'booking-station store restore-backup' or "
            "'booking-station store new')"
        )
    if not path.exists() and backups_dir.is_dir() and any(backups_dir.glob(f"{path.stem}-*.db")):
        raise StoreCorrupt(
            f"database {path} is missing but backups exist in {backups_dir}; run "
            "'booking-station store restore-backup' or 'booking-station store new'"
        )


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations already recorded in the database, in the order they ran."""
    if not _has_table(conn, "migrations"):
        return []
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    migrations: Sequence[tuple[str, str]] = MIGRATIONS,
) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns their names.

    A migration that fails is rolled back whole (SQLite's DDL is transactional), is not
    recorded, and stops the ones after it. An existing store is copied to
    ``<db>.pre-<first pending>`` first.
    """
    if not _has_table(conn, "migrations"):
        conn.execute(
            "CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
    done = set(applied_migrations(conn))
    pending = [(name, sql) for name, sql in migrations if name not in done]
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
    """A consistent copy through SQLite's online backup API, durable before it is named."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    dest = sqlite3.connect(tmp)
    try:
        conn.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # a lone file, no -wal/-shm beside it
    finally:
        dest.close()
    os.chmod(tmp, 0o600)
    fsync_file(tmp)
    tmp.replace(target)
    fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    """Flush a file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory, so a rename or a new name in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write a small file (mode 0600) through a temporary name, fsynced, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # the mode is cut by the umask; this file is the store's, private
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
