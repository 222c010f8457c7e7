"""Re-encrypting every blob under a new key, batch by batch, so an interruption loses nothing.

Every row keeps the id of the key that sealed its blobs. A batch opens a few rows under an old
key, seals them again under the current key and updates blob and key id together, in one SQLite
transaction with the progress record. A power cut between batches leaves a store where some rows
name the old key and some the new: with both keys loaded (the ``.previous`` credential) every
blob still opens, and running the rotation again carries on where it stopped. Only when no row
names an old key is the rotation finished: the audit log gets ``store_key_rotated`` and the old
key may be destroyed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from appliance.store import audit
from appliance.store.crypto import BlobCipher, associated_data
from appliance.store.database import utcnow
from appliance.store.errors import UnknownKey

PROGRESS_SETTING = "key_rotation"
KEY_SETTING = "store_key_id"

# (column, blob) pairs with the associated data each blob was sealed with, from one row.
_Blobs = list[tuple[str, bytes | None, bytes]]


@dataclass(frozen=True, slots=True)
class _BlobTable:
    """One table that holds blobs: how to find its rows under a key and rebuild their AAD."""

    name: str
    select: str  # rowid first; "?" for the key id and the row limit
    blobs: Callable[[tuple], _Blobs]


def _aad(booking_id: str, record_id: str, kind: str) -> bytes:
    return associated_data(booking_id, record_id, kind)


BLOB_TABLES: tuple[_BlobTable, ...] = (
    _BlobTable(
        "bookings",
        "SELECT rowid, booking_id, booking_number_enc, subject_enc FROM bookings"
        " WHERE key_id = ? LIMIT ?",
        lambda r: [("booking_number_enc", r[2], _aad(r[1], r[1], "number")),
                   ("subject_enc", r[3], _aad(r[1], r[1], "subject"))],
    ),
    _BlobTable(
        "impressions",
        "SELECT rowid, booking_id, impression_id, image_enc FROM impressions"
        " WHERE key_id = ? LIMIT ?",
        lambda r: [("image_enc", r[3], _aad(r[1], r[2], "image"))],
    ),
    _BlobTable(
        "templates",
        "SELECT t.rowid, i.booking_id, t.impression_id, t.format, t.data_enc FROM templates t"
        " JOIN impressions i USING (impression_id) WHERE t.key_id = ? LIMIT ?",
        lambda r: [("data_enc", r[4], _aad(r[1], r[2], f"template:{r[3]}"))],
    ),
    _BlobTable(
        "transactions",
        "SELECT rowid, booking_id, transaction_id, data_enc FROM transactions"
        " WHERE key_id = ? LIMIT ?",
        lambda r: [("data_enc", r[3], _aad(r[1], r[2], "transaction"))],
    ),
    _BlobTable(
        "drafts",
        "SELECT rowid, booking_id, booking_number_enc, subject_enc FROM drafts"
        " WHERE key_id = ? LIMIT ?",
        lambda r: [("booking_number_enc", r[2], _aad(r[1], r[1], "draft-number")),
                   ("subject_enc", r[3], _aad(r[1], r[1], "draft-subject"))],
    ),
    _BlobTable(
        "draft_impressions",
        "SELECT rowid, booking_id, impression_id, image_enc FROM draft_impressions"
        " WHERE key_id = ? LIMIT ?",
        lambda r: [("image_enc", r[3], _aad(r[1], r[2], "draft-image"))],
    ),
)


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Where a rotation stands (kept in the ``settings`` table, updated with every batch)."""

    to_key_id: str
    from_key_ids: tuple[str, ...]
    started_at: str
    rows_done: int
    batches: int


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one run of the rotation did."""

    to_key_id: str
    from_key_ids: tuple[str, ...]
    rows_rotated: int  # by this run
    rows_total: int  # by every run of this rotation
    completed: bool  # no row names an old key; the old key may be destroyed


def key_usage(conn: sqlite3.Connection) -> dict[str, int]:
    """How many rows name each key id, over every table that holds blobs."""
    usage: dict[str, int] = {}
    for table in BLOB_TABLES:
        for key_id, count in conn.execute(
            f"SELECT key_id, COUNT(*) FROM {table.name} GROUP BY key_id"
        ):
            usage[key_id] = usage.get(key_id, 0) + count
    return usage


def check_loaded(usage: dict[str, int], cipher: BlobCipher) -> None:
    """Refuse to start when some rows name a key that is not loaded: they could not be read."""
    missing = sorted(k for k in usage if k not in cipher.key_ids)
    if missing:
        raise UnknownKey(
            f"rows are sealed under key id(s) {', '.join(missing)} which are not loaded; "
            "install that key as the previous key (credential or '.previous' file) first"
        )


def progress(conn: sqlite3.Connection) -> RotationProgress | None:
    """The rotation under way, if any."""
    row = conn.execute(
        "SELECT value FROM settings WHERE key = ?", (PROGRESS_SETTING,)
    ).fetchone()
    if row is None:
        return None
    v = json.loads(row[0])
    return RotationProgress(v["to"], tuple(v["from"]), v["started_at"], v["rows_done"],
                            v["batches"])


def _save_progress(conn: sqlite3.Connection, p: RotationProgress) -> None:
    value = json.dumps({"to": p.to_key_id, "from": list(p.from_key_ids),
                        "started_at": p.started_at, "rows_done": p.rows_done,
                        "batches": p.batches})
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (PROGRESS_SETTING, value),
    )


def rotate_batch(
    conn: sqlite3.Connection, cipher: BlobCipher, max_rows: int, max_bytes: int
) -> tuple[int, RotationProgress | None]:
    """Re-seal up to ``max_rows`` rows (or about ``max_bytes``) in one transaction.

    Returns the rows rotated (0 when none is left under an old key) and the progress after.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        usage = key_usage(conn)
        old_ids = sorted(k for k in usage if k != cipher.current_id)
        current = progress(conn)
        if not old_ids:
            conn.execute("COMMIT")
            return 0, current
        check_loaded(usage, cipher)
        if current is None or current.to_key_id != cipher.current_id:
            earlier = current.from_key_ids if current else ()
            current = RotationProgress(cipher.current_id,
                                       tuple(sorted({*earlier, *old_ids} - {cipher.current_id})),
                                       utcnow(), 0, 0)
        rows = size = 0
        for key_id in old_ids:
            for table in BLOB_TABLES:
                if rows >= max_rows or size >= max_bytes:
                    break
                for row in conn.execute(table.select, (key_id, max_rows - rows)).fetchall():
                    size += _reseal(conn, cipher, table, key_id, row)
                    rows += 1
                    if size >= max_bytes:
                        break
        current = RotationProgress(current.to_key_id, current.from_key_ids, current.started_at,
                                   current.rows_done + rows, current.batches + 1)
        _save_progress(conn, current)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return rows, current


def _reseal(
    conn: sqlite3.Connection, cipher: BlobCipher, table: _BlobTable, key_id: str, row: tuple
) -> int:
    columns, values, size = [], [], 0
    for column, blob, aad in table.blobs(row):
        columns.append(column)
        if blob is None:  # purged biometrics: nothing to re-seal, only the key id moves
            values.append(None)
            continue
        sealed, _ = cipher.seal(cipher.open(blob, key_id, aad), aad)
        values.append(sealed)
        size += len(sealed)
    assignments = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(
        f"UPDATE {table.name} SET {assignments}, key_id = ? WHERE rowid = ? AND key_id = ?",
        (*values, cipher.current_id, row[0], key_id),
    )
    return size


def finish(conn: sqlite3.Connection, cipher: BlobCipher, actor: str) -> RotationReport | None:
    """Close a rotation once no row names an old key: audit it, forget the progress record.

    Returns None while rows under an old key remain.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        usage = key_usage(conn)
        if any(k != cipher.current_id for k in usage):
            conn.execute("ROLLBACK")
            return None
        done = progress(conn)
        report = RotationReport(cipher.current_id, done.from_key_ids if done else (), 0,
                                done.rows_done if done else 0, True)
        if done is not None:
            audit.append(conn, actor, "store_key_rotated",
                         {"from": list(done.from_key_ids), "to": cipher.current_id,
                          "rows": done.rows_done, "started_at": done.started_at})
            conn.execute("DELETE FROM settings WHERE key = ?", (PROGRESS_SETTING,))
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (KEY_SETTING, cipher.current_id),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return report
