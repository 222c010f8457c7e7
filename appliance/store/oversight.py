"""What the technician's page reads from the store and the few things it may change there.

Every function takes a connection (``Store.read`` for reads, ``Store.write`` for changes) and
returns metadata only: audit entries, outbox rows named by a hash of their booking id, sizes,
states and ages. Nothing here decrypts a blob, so nothing here can hand out a print, a name or
a booking number.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.store import audit
from appliance.store.database import utcnow
from appliance.store.outbox import OutboxState

AUDIT_COLUMNS = ("seq", "at", "actor", "action", "detail")


# ---- settings ---------------------------------------------------------------------------------

def setting(conn: sqlite3.Connection, key: str) -> Any:
    """The JSON value of a setting, or None."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def put_setting(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Store a JSON value under ``key`` (inside the caller's transaction)."""
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (key, json.dumps(value, sort_keys=True)))


def update_setting(key: str, change: Callable[[Any], Any]) -> Callable[[sqlite3.Connection], Any]:
    """A write job: read ``key``, store ``change(old)``, return the new value."""

    def run(conn: sqlite3.Connection) -> Any:
        conn.execute("BEGIN IMMEDIATE")
        value = change(setting(conn, key))
        put_setting(conn, key, value)
        conn.execute("COMMIT")
        return value

    return run


# ---- the audit log ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit entries a technician asked for (every field optional)."""

    since: str | None = None  # ISO 8601, inclusive
    until: str | None = None  # ISO 8601, exclusive
    actor: str | None = None  # exact actor, or a prefix ending in ':' ("technician:")
    action: str | None = None
    before_seq: int | None = None  # paging: entries older than this one

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters."""
        clauses, params = ["1 = 1"], []
        if self.since:
            clauses.append("at >= ?")
            params.append(_utc_text(self.since))
        if self.until:
            clauses.append("at < ?")
            params.append(_utc_text(self.until))
        if self.actor:
            if self.actor.endswith(":"):
                clauses.append("substr(actor, 1, ?) = ?")
                params += [len(self.actor), self.actor]
            else:
                clauses.append("actor = ?")
                params.append(self.actor)
        if self.action:
            clauses.append("action = ?")
            params.append(self.action)
        if self.before_seq is not None:
            clauses.append("seq < ?")
            params.append(self.before_seq)
        return " AND ".join(clauses), params


def _utc_text(iso: str) -> str:
    """An ISO time as the audit log writes it (UTC, microseconds), so that text order holds."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def audit_page(conn: sqlite3.Connection, chosen: AuditFilter, limit: int) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` entries that match."""
    where, params = chosen.where()
    rows = conn.execute(f"SELECT seq, at, actor, action, detail FROM audit_log WHERE {where}"
                        " ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall()
    return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in rows]


def audit_lines(conn: sqlite3.Connection, chosen: AuditFilter, batch: int = 500
                ) -> Iterator[bytes]:
    """Every matching entry, oldest first, as JSON lines with its chain hashes."""
    where, params = chosen.where()
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log"
            f" WHERE {where} AND seq > ? ORDER BY seq LIMIT ?", (*params, after, batch)
        ).fetchall()
        for seq, at, actor, action, detail, prev_hash, digest in rows:
            yield json.dumps({"seq": seq, "at": at, "actor": actor, "action": action,
                              "detail": json.loads(detail), "prev_hash": prev_hash,
                              "hash": digest}, sort_keys=True).encode() + b"\n"
        if len(rows) < batch:
            return
        after = rows[-1][0]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last entry verified so far: its sequence number and hash."""

    seq: int
    hash: str


def verify_since(conn: sqlite3.Connection, checkpoint: Checkpoint | None
                 ) -> tuple[audit.ChainReport, Checkpoint]:
    """Verify only the entries after ``checkpoint``, after checking that it still holds.

    A checkpoint that retention deleted, or one whose entry changed (content or hash) or
    disappeared, starts a whole walk from the anchor. Returns the report of the walk (its
    ``entries`` counts the entries checked this time) and the new checkpoint.
    """
    anchor_seq, anchor_hash = audit.anchor(conn)
    if checkpoint is not None and checkpoint.seq > anchor_seq:
        row = conn.execute("SELECT seq, at, actor, action, detail, prev_hash, hash"
                           " FROM audit_log WHERE seq = ?", (checkpoint.seq,)).fetchone()
        holds = (row is not None and row[6] == checkpoint.hash
                 and audit.entry_hash(*row[:6]) == checkpoint.hash)
        start = checkpoint if holds else None
    elif checkpoint is not None and checkpoint.seq == anchor_seq == 0:
        start = Checkpoint(0, audit.GENESIS)
    else:
        start = None
    if start is None:
        start = Checkpoint(anchor_seq, anchor_hash)
    prev, expected, count = start.hash, start.seq + 1, 0
    rows = conn.execute("SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log"
                        " WHERE seq > ? ORDER BY seq", (start.seq,))
    for seq, at, actor, action, detail, prev_hash, digest in rows:
        count += 1
        problem = ""
        if seq != expected:
            problem = f"entry {expected} {'missing' if seq > expected else 'out of order'}"
        elif prev_hash != prev:
            problem = "does not link to the entry before it"
        elif audit.entry_hash(seq, at, actor, action, detail, prev_hash) != digest:
            problem = "content does not match its hash"
        if problem:
            report = audit.ChainReport(False, count, prev, expected, problem, anchor_seq)
            return report, Checkpoint(expected - 1, prev)
        prev, expected = digest, seq + 1
    return (audit.ChainReport(True, count, prev, anchor_seq=anchor_seq),
            Checkpoint(expected - 1, prev))


# ---- the outbox -------------------------------------------------------------------------------

def booking_tag(booking_id: str) -> str:
    """A short hash that tells outbox rows apart without naming the booking."""
    return hashlib.sha256(f"outbox-view {booking_id}".encode()).hexdigest()[:16]


def outbox_rows(conn: sqlite3.Connection, limit: int, now: datetime | None = None
                ) -> list[dict[str, Any]]:
    """Unsent and recent rows, oldest first: tag, size, state, attempts, age in seconds."""
    now = now or datetime.now(UTC)
    rows = conn.execute(
        "SELECT o.booking_id, t.size, o.state, o.attempts, o.enqueued_at, o.next_attempt_at"
        " FROM outbox o JOIN transactions t USING (transaction_id)"
        " ORDER BY CASE WHEN o.state IN (?, ?) THEN 0 ELSE 1 END, o.seq DESC LIMIT ?",
        (OutboxState.QUEUED, OutboxState.SENDING, limit),
    ).fetchall()
    return [{"booking": booking_tag(bid), "size": size, "state": state, "attempts": attempts,
             "age_s": round(_age(enqueued, now), 1),
             "next_attempt_in_s": max(0.0, round(-_age(next_at, now), 1))}
            for bid, size, state, attempts, enqueued, next_at in rows]


def _age(iso: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(iso)).total_seconds()


def retry_now(conn: sqlite3.Connection) -> int:
    """Every queued row waiting for a later attempt becomes due now; returns how many."""
    now = utcnow()
    cur = conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE state = ?"
                       " AND next_attempt_at > ?", (now, OutboxState.QUEUED, now))
    return cur.rowcount
