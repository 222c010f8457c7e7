"""The append-only, hash-chained audit log.

Entry ``n`` stores ``hash_n = sha256(canonical(seq, at, actor, action, detail, hash_{n-1}))``
with ``hash_0`` the all-zero genesis value. Editing, removing, inserting or reordering any entry
breaks the chain from that entry on, and :func:`verify` names the first bad one. Cutting entries
off the end cannot be seen from the chain alone; the chain head goes out with every telemetry
message so the central side notices a head that moves backwards.

Retention deletes old entries, but only a whole prefix of the chain, and in the same
transaction it records the anchor: the sequence number and hash of the last deleted entry (the
``audit_anchor`` setting). :func:`verify` then starts from the anchor instead of genesis, so the
entries that remain still prove their order and content; the anchor itself is as trustworthy as
the heads central has already seen in telemetry (it equals one of them, if central kept them).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from appliance.store.database import utcnow

GENESIS = "0" * 64
ANCHOR_SETTING = "audit_anchor"

#: What the audit log records (issue: logins, captures, overrides, submissions, acks, purges,
#: config changes, remote commands).
ACTIONS = frozenset(
    {
        "login",
        "login_failed",
        "login_locked",
        "logout",
        "config_changed",
        "config_rolled_back",
        "diagnostics_exported",
        "scanner_test",
        "booking_started",
        "booking_cancelled",
        "capture",
        "quality_override",
        "annotation",
        "booking_committed",
        "submission",
        "acknowledged",
        "ack_refused",
        "rejected",
        "purge",
        "config_loaded",
        "remote_command",
        "store_key_rotated",
        "station_started",
        "station_stopped",
        "store_restored",
        "store_created",
    }
)


def canonical(seq: int, at: str, actor: str, action: str, detail: str, prev_hash: str) -> bytes:
    """The exact bytes hashed for one entry."""
    return json.dumps(
        [seq, at, actor, action, detail, prev_hash], ensure_ascii=True, separators=(",", ":")
    ).encode("ascii")


def entry_hash(seq: int, at: str, actor: str, action: str, detail: str, prev_hash: str) -> str:
    """sha256 of an entry's canonical form, chained to the previous hash."""
    return hashlib.sha256(canonical(seq, at, actor, action, detail, prev_hash)).hexdigest()


def append(conn: sqlite3.Connection, actor: str, action: str, detail: dict[str, Any]) -> str:
    """Append one entry inside the caller's transaction; returns the new head hash.

    ``detail`` must never hold biometric or personal data: ids, counts and reasons only.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    last_seq, prev = head(conn)
    seq = last_seq + 1
    at = utcnow()
    detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    digest = entry_hash(seq, at, actor, action, detail_json, prev)
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, detail_json, prev, digest),
    )
    return digest


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify` found."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str = ""
    anchor_seq: int = 0  # entries up to this one were deleted by retention


def anchor(conn: sqlite3.Connection) -> tuple[int, str]:
    """Sequence number and hash of the last entry retention deleted (0 and genesis if none)."""
    try:
        row = conn.execute(
            "SELECT value FROM settings WHERE key = ?", (ANCHOR_SETTING,)
        ).fetchone()
    except sqlite3.OperationalError:  # a database from before the settings table
        return 0, GENESIS
    if row is None:
        return 0, GENESIS
    value = json.loads(row[0])
    return int(value["seq"]), str(value["hash"])


def set_anchor(conn: sqlite3.Connection, seq: int, digest: str, at: str) -> None:
    """Record the last deleted entry, inside the transaction that deletes it."""
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (ANCHOR_SETTING, json.dumps({"seq": seq, "hash": digest, "at": at})),
    )


def verify(conn: sqlite3.Connection) -> ChainReport:
    """Walk the chain in order from the anchor; report the first entry that does not hold."""
    anchor_seq, prev = anchor(conn)
    expected_seq = anchor_seq + 1
    count = 0
    rows = conn.execute(
        "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    for seq, at, actor, action, detail, prev_hash, digest in rows:
        count += 1
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order"
            return ChainReport(False, count, prev, expected_seq, f"entry {expected_seq} {what}",
                               anchor_seq)
        if prev_hash != prev:
            return ChainReport(False, count, prev, seq, "does not link to the entry before it",
                               anchor_seq)
        if entry_hash(seq, at, actor, action, detail, prev_hash) != digest:
            return ChainReport(False, count, prev, seq, "content does not match its hash",
                               anchor_seq)
        prev = digest
        expected_seq += 1
    return ChainReport(True, count, prev, anchor_seq=anchor_seq)


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The last entry's sequence number and hash (the anchor's, or genesis, when empty)."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else anchor(conn)
