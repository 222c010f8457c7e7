"""Backups of the store, and the technician's two ways back from a corrupt one.

A backup is a consistent copy made through SQLite's online backup API from a read connection,
so the writer keeps writing while it runs. It is written under a temporary name, checked
(``quick_check``), fsynced and only then renamed to ``<stem>-<UTC time>.db`` in
``data_dir/backups``; the newest ``keep`` are kept. Backups hold the same ciphertext as the
store: they open only with the keys that sealed them (mind this when retiring a key).

:func:`restore_backup` puts a backup in place of the store; :func:`new_store` starts an empty
one. Both need the station stopped (they take the store lock), set the replaced file aside
rather than delete it, clear the "needs technician" marker and write an audit entry.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.store import audit
from appliance.store.database import (
    connect,
    connect_readonly,
    fsync_dir,
    fsync_file,
    integrity_problems,
    marker_path,
    migrate,
)
from appliance.store.errors import DiskFull, StoreCorrupt, StoreError
from appliance.store.lock import StoreLock
from appliance.store.outbox import PENDING_STATES
from appliance.store.rotation import key_usage

log = logging.getLogger(__name__)

_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What :func:`restore_backup` did."""

    backup: Path
    taken_at: datetime | None
    set_aside: Path | None  # where the replaced database went (None: there was none)
    bookings: int
    undelivered: int
    key_ids: tuple[str, ...]  # keys the restored store needs


def backups_dir(db_path: Path) -> Path:
    """Where a store's backups live: ``backups/`` beside the database."""
    return db_path.parent / "backups"


def backup_name(db_path: Path, at: datetime) -> str:
    """File name of a backup taken at ``at`` (names sort in time order)."""
    return f"{db_path.stem}-{at.astimezone(UTC).strftime(_STAMP)}.db"


def backup_time(db_path: Path, backup: Path) -> datetime | None:
    """When a backup was taken, read from its name."""
    prefix = db_path.stem + "-"
    if not (backup.name.startswith(prefix) and backup.suffix == ".db"):
        return None
    try:
        return datetime.strptime(backup.name[len(prefix):-3], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def list_backups(db_path: Path) -> list[Path]:
    """The store's backups, oldest first."""
    folder = backups_dir(db_path)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if backup_time(db_path, p) is not None]
    return sorted(found, key=lambda p: p.name)


def take_backup(db_path: Path, *, keep: int, min_free_mb: int = 0,
                now: datetime | None = None) -> Path:
    """Copy the store consistently into ``backups/``; keep the newest ``keep`` backups.

    Raises DiskFull (and leaves no partial file) when the copy would take the disk under the
    floor or the disk fills while writing.
    """
    if keep < 1:
        raise ValueError("keep at least one backup")
    folder = backups_dir(db_path)
    folder.mkdir(mode=0o700, exist_ok=True)
    for stale in folder.glob("*.db.tmp"):  # left by a crash during an earlier backup
        stale.unlink(missing_ok=True)
    size = db_path.stat().st_size + _wal_size(db_path)
    free = shutil.disk_usage(folder).free
    if free - size < min_free_mb * 1024 * 1024:
        raise DiskFull(f"backup skipped: it needs {size // 2**20} MiB and would take the data "
                       f"disk under its floor of {min_free_mb} MiB")
    target = folder / backup_name(db_path, now or datetime.now(UTC))
    tmp = target.with_name(target.name + ".tmp")
    try:
        _copy(db_path, tmp)
    except (OSError, sqlite3.OperationalError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.OperationalError) or exc.errno == 28:  # ENOSPC
            raise DiskFull(f"backup failed, the disk filled while writing it: {exc}") from exc
        raise
    problems = integrity_problems(tmp, quick=True)
    if problems:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup copy failed its check ({problems}); no backup was kept")
    tmp.replace(target)
    fsync_dir(folder)
    prune_backups(db_path, keep)
    log.info("store: backup written to %s", target)
    return target


def prune_backups(db_path: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups; returns the deleted paths."""
    backups = list_backups(db_path)
    gone = backups[:-keep] if keep > 0 else backups
    for path in gone:
        path.unlink(missing_ok=True)
    if gone:
        fsync_dir(backups_dir(db_path))
    return gone


def _wal_size(db_path: Path) -> int:
    wal = Path(f"{db_path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _copy(source: Path, tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    src = connect_readonly(source)
    try:
        dest = sqlite3.connect(tmp)
        try:
            src.backup(dest)  # all pages in one step: one read transaction, one snapshot
            # a lone file (no -wal/-shm beside it) that opens anywhere, even read-only
            dest.execute("PRAGMA journal_mode=DELETE")
        finally:
            dest.close()
    finally:
        src.close()
    tmp.chmod(0o600)
    fsync_file(tmp)


def _set_aside(db_path: Path, label: str) -> Path | None:
    if not db_path.exists():
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        return None
    aside = db_path.with_name(f"{db_path.name}.{label}-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            src.rename(Path(f"{aside}{suffix}"))
    fsync_dir(db_path.parent)
    return aside


def _counts(conn: sqlite3.Connection) -> tuple[int, int]:
    bookings = conn.execute("SELECT COUNT(*) FROM bookings").fetchone()[0]
    states = ",".join("?" * len(PENDING_STATES))
    pending = conn.execute(
        f"SELECT COUNT(*) FROM outbox WHERE state IN ({states})", tuple(PENDING_STATES)
    ).fetchone()[0]
    return bookings, pending


def restore_backup(db_path: Path, backup: Path | None = None, *,
                   actor: str = "technician") -> RestoreReport:
    """Put a backup (the newest sound one when None) in place of the store.

    The store must not be open anywhere (StoreBusy otherwise). The database it replaces, if
    any, is renamed ``<db>.replaced-<time>``, never deleted.
    """
    with StoreLock(db_path):
        if backup is None:
            backup = _newest_sound_backup(db_path)
        elif problems := integrity_problems(backup):
            raise StoreCorrupt(f"backup {backup} failed its integrity check ({problems})")
        tmp = db_path.with_name(db_path.name + ".restoring")
        _copy(backup, tmp)
        aside = _set_aside(db_path, "replaced")
        tmp.replace(db_path)
        fsync_dir(db_path.parent)
        conn = connect(db_path)
        try:
            migrate(conn, db_path)
            bookings, pending = _counts(conn)
            keys = tuple(sorted(key_usage(conn)))
            conn.execute("BEGIN IMMEDIATE")
            audit.append(conn, actor, "store_restored",
                         {"backup": backup.name, "replaced": aside.name if aside else None,
                          "bookings": bookings, "undelivered": pending})
            conn.execute("COMMIT")
        finally:
            conn.close()
        marker_path(db_path).unlink(missing_ok=True)
        fsync_dir(db_path.parent)
    log.info("store: restored %s (%d bookings, %d undelivered)", backup.name, bookings, pending)
    return RestoreReport(backup, backup_time(db_path, backup), aside, bookings, pending, keys)


def _newest_sound_backup(db_path: Path) -> Path:
    for candidate in reversed(list_backups(db_path)):
        problems = integrity_problems(candidate)
        if not problems:
            return candidate
        log.warning("store: backup %s failed its integrity check; trying an older one",
                    candidate.name)
    raise StoreError(f"no sound backup in {backups_dir(db_path)}")


def new_store(db_path: Path, *, force: bool = False, actor: str = "technician") -> Path | None:
    """Start an empty store; the old file, if any, is renamed ``<db>.retired-<time>``.

    Refuses (StoreError) when the current store is sound and still holds undelivered
    transactions, unless ``force``. Returns where the old file went.
    """
    with StoreLock(db_path):
        if db_path.exists() and not force and not integrity_problems(db_path):
            conn = connect(db_path)
            try:
                _, pending = _counts(conn)
            except sqlite3.DatabaseError:
                pending = 0
            finally:
                conn.close()
            if pending:
                raise StoreError(
                    f"the store {db_path} is sound and holds {pending} undelivered "
                    "transaction(s); deliver them first or pass --force to retire it anyway"
                )
        aside = _set_aside(db_path, "retired")
        conn = connect(db_path)
        try:
            migrate(conn, db_path)
            conn.execute("BEGIN IMMEDIATE")
            audit.append(conn, actor, "store_created",
                         {"retired": aside.name if aside else None})
            conn.execute("COMMIT")
        finally:
            conn.close()
        marker_path(db_path).unlink(missing_ok=True)
        fsync_dir(db_path.parent)
    log.info("store: new empty store created at %s", db_path)
    return aside
