"""The append-only, hash-chained audit log.

Entry ``n`` stores ``hash_n = sha256(canonical(seq, at, actor, action, detail, hash_{n-1}))``
with ``hash_0`` the all-zero genesis value. Editing, removing, inserting or reordering any entry
breaks the chain from that entry on, and :func:`verify` names the first bad one. Cutting entries
off the end cannot be seen from the chain alone; the chain head goes out with every telemetry
message so the central side notices a head that moves backwards.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from appliance.store.database import utcnow

GENESIS = "0" * 64

#: What the audit log records (issue: logins, captures, overrides, submissions, acks, purges,
#: config changes, remote commands).
ACTIONS = frozenset(
    {
        "login",
        "login_failed",
        "capture",
        "quality_override",
        "annotation",
        "booking_committed",
        "submission",
        "acknowledged",
        "rejected",
        "purge",
        "config_loaded",
        "remote_command",
        "store_key_rotated",
        "station_started",
        "station_stopped",
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
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
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


def verify(conn: sqlite3.Connection) -> ChainReport:
    """Walk the chain in order; report the first entry that does not hold."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    rows = conn.execute(
        "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    for seq, at, actor, action, detail, prev_hash, digest in rows:
        count += 1
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order"
            return ChainReport(False, count, prev, expected_seq, f"entry {expected_seq} {what}")
        if prev_hash != prev:
            return ChainReport(False, count, prev, seq, "does not link to the entry before it")
        if entry_hash(seq, at, actor, action, detail, prev_hash) != digest:
            return ChainReport(False, count, prev, seq, "content does not match its hash")
        prev = digest
        expected_seq += 1
    return ChainReport(True, count, prev)


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The last entry's sequence number and hash (0 and the genesis hash when empty)."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)
