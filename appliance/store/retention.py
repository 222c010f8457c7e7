"""How long the station remembers, and giving the space back.

Two clocks run. Biometric blobs go ``biometric_grace_hours`` after central's ``stored`` answer
(:meth:`Store.purge_delivered`). Booking metadata and audit entries go after
``metadata_retention_days``, counted from the later of the commit and the acknowledgement:

* a booking is deleted only when every transaction of it is ``stored`` at central. Nothing
  queued, in flight, rejected or drafted is ever deleted, however old;
* audit entries are deleted only as a whole prefix of the chain, and the prefix stops at the
  first entry that is young enough to keep or that names a booking or transaction the store
  still holds. The last deleted entry becomes the chain's anchor (see :mod:`audit`).

Space: the file is created with ``auto_vacuum=INCREMENTAL``, so after a purge
``PRAGMA incremental_vacuum`` hands the free pages back and a ``wal_checkpoint(TRUNCATE)``
shrinks the WAL. That needs no spare disk, unlike ``VACUUM``, which rebuilds the whole file
beside itself and would fail exactly when the disk is nearly full. A store created before
auto-vacuum was switched on is converted once with ``VACUUM``, and only when free space is more
than twice the file.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from appliance.store import audit
from appliance.store.database import AUTO_VACUUM_INCREMENTAL
from appliance.store.outbox import OutboxState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetadataPurge:
    """What :func:`purge_expired` deleted."""

    bookings: int
    audit_entries: int
    anchor_seq: int  # the chain now verifies from the entry after this one (0: from genesis)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """One retention run: biometric purge, metadata purge, space handed back."""

    biometrics_purged: int
    bookings_deleted: int
    audit_entries_deleted: int
    pages_reclaimed: int


def expired_bookings(conn: sqlite3.Connection, cutoff: str) -> list[str]:
    """Bookings committed before ``cutoff`` whose every transaction central stored before it."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT b.booking_id FROM bookings b WHERE b.committed_at < ?"
            " AND EXISTS (SELECT 1 FROM outbox o WHERE o.booking_id = b.booking_id)"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.booking_id = b.booking_id"
            "   AND (o.state != ? OR o.updated_at >= ?))"
            " AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.booking_id = b.booking_id"
            "   AND NOT EXISTS (SELECT 1 FROM outbox o"
            "     WHERE o.transaction_id = t.transaction_id))",
            (cutoff, OutboxState.STORED, cutoff),
        )
    ]


def delete_bookings(conn: sqlite3.Connection, booking_ids: list[str]) -> None:
    """Delete bookings with every row that hangs off them (inside the caller's transaction)."""
    for bid in booking_ids:
        conn.execute("DELETE FROM outbox WHERE booking_id = ?", (bid,))
        conn.execute("DELETE FROM transactions WHERE booking_id = ?", (bid,))
        conn.execute(
            "DELETE FROM templates WHERE impression_id IN"
            " (SELECT impression_id FROM impressions WHERE booking_id = ?)", (bid,)
        )
        conn.execute(
            "DELETE FROM quality_reports WHERE impression_id IN"
            " (SELECT impression_id FROM impressions WHERE booking_id = ?)", (bid,)
        )
        conn.execute("DELETE FROM impressions WHERE booking_id = ?", (bid,))
        conn.execute("DELETE FROM bookings WHERE booking_id = ?", (bid,))


def _still_held(conn: sqlite3.Connection) -> set[str]:
    held: set[str] = set()
    for sql in ("SELECT booking_id FROM bookings", "SELECT transaction_id FROM transactions",
                "SELECT booking_id FROM drafts"):
        held.update(r[0] for r in conn.execute(sql))
    return held


def _names_held(detail: str, held: set[str]) -> bool:
    try:
        value = json.loads(detail)
    except ValueError:
        return False
    if not isinstance(value, dict):
        return False
    return any(value.get(k) in held for k in ("booking_id", "transaction_id"))


def trim_audit(conn: sqlite3.Connection, cutoff: str) -> tuple[int, int]:
    """Delete the oldest whole prefix of the chain that may go; returns (count, anchor seq)."""
    held = _still_held(conn)
    last: tuple[int, str, str] | None = None
    count = 0
    for seq, at, detail, digest in conn.execute(
        "SELECT seq, at, detail, hash FROM audit_log ORDER BY seq"
    ):
        if at >= cutoff or _names_held(detail, held):
            break
        last = (seq, digest, at)
        count += 1
    if last is None:
        return 0, audit.anchor(conn)[0]
    seq, digest, at = last
    conn.execute("DELETE FROM audit_log WHERE seq <= ?", (seq,))
    audit.set_anchor(conn, seq, digest, at)
    return count, seq


def purge_expired(conn: sqlite3.Connection, cutoff: str) -> MetadataPurge:
    """Delete expired bookings and the audit prefix in one transaction, audited."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = expired_bookings(conn, cutoff)
        delete_bookings(conn, ids)
        entries, anchor_seq = trim_audit(conn, cutoff)
        if ids or entries:
            audit.append(conn, "station", "purge",
                         {"kind": "metadata", "bookings": len(ids), "audit_entries": entries,
                          "anchor_seq": anchor_seq, "cutoff": cutoff})
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return MetadataPurge(len(ids), entries, anchor_seq)


def reclaim_space(conn: sqlite3.Connection, path: Path) -> int:
    """Hand free pages back to the filesystem; returns how many pages went."""
    mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if mode == AUTO_VACUUM_INCREMENTAL:
        # Python's execute() steps a statement once and this pragma frees one page per step;
        # executescript() steps it to the end (we are in autocommit: it commits nothing else)
        conn.executescript("PRAGMA incremental_vacuum;")
    else:
        size = path.stat().st_size
        if shutil.disk_usage(path.parent).free <= 2 * size:
            log.warning("store: not enough free space to convert the database to incremental "
                        "vacuum; free pages stay in the file")
            return 0
        conn.execute(f"PRAGMA auto_vacuum={AUTO_VACUUM_INCREMENTAL}")
        conn.execute("VACUUM")
        log.info("store: database converted to incremental vacuum")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    reclaimed = free_pages - conn.execute("PRAGMA freelist_count").fetchone()[0]
    if reclaimed:
        log.info("store: %d free pages handed back to the filesystem", reclaimed)
    return reclaimed
