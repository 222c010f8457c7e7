"""The outbox: transactions waiting for the central service's ``stored`` answer.

Order is priority first (lower number first), then first in, first out. A transaction leaves
the queue only when central says ``stored`` (with a receipt) or ``rejected`` (with a reason the
officer can read). ``sending`` rows return to ``queued`` at start-up: after a crash nothing is
known to have arrived.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from appliance.store.database import utcnow


class OutboxState(enum.StrEnum):
    """Delivery state of one transaction (and of its booking, on the kiosk)."""

    QUEUED = "queued"
    SENDING = "sending"
    STORED = "stored"  # held by central
    REJECTED = "rejected"


PENDING_STATES = frozenset({OutboxState.QUEUED, OutboxState.SENDING})


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One transaction waiting to go out."""

    transaction_id: str
    booking_id: str
    priority: int
    attempts: int
    size: int
    sha256: str
    content_type: str


def enqueue(conn: sqlite3.Connection, transaction_id: str, booking_id: str, priority: int) -> None:
    """Queue a transaction inside the caller's transaction."""
    now = utcnow()
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()[0]
    conn.execute(
        "INSERT INTO outbox (transaction_id, booking_id, priority, seq, enqueued_at, state,"
        " attempts, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        (transaction_id, booking_id, priority, seq, now, OutboxState.QUEUED, now, now),
    )


def due(conn: sqlite3.Connection, limit: int, exclude: frozenset[str] = frozenset()
        ) -> list[OutboxItem]:
    """Queued transactions whose next attempt time has come, in delivery order."""
    rows = conn.execute(
        "SELECT o.transaction_id, o.booking_id, o.priority, o.attempts, t.size, t.sha256,"
        " t.content_type FROM outbox o JOIN transactions t USING (transaction_id)"
        " WHERE o.state = ? AND o.next_attempt_at <= ? ORDER BY o.priority, o.seq LIMIT ?",
        (OutboxState.QUEUED, utcnow(), limit + len(exclude)),
    ).fetchall()
    items = [OutboxItem(*row) for row in rows if row[0] not in exclude]
    return items[:limit]


def set_state(
    conn: sqlite3.Connection,
    transaction_id: str,
    state: OutboxState,
    *,
    reason: str | None = None,
    receipt: str | None = None,
    retry_in_s: float | None = None,
    count_attempt: bool = False,
) -> bool:
    """Move a transaction to ``state``; returns False when it was already final."""
    row = conn.execute(
        "SELECT state FROM outbox WHERE transaction_id = ?", (transaction_id,)
    ).fetchone()
    if row is None or row[0] in (OutboxState.STORED, OutboxState.REJECTED):
        return False
    now = datetime.now(UTC)
    next_at = (now + timedelta(seconds=retry_in_s or 0)).isoformat(timespec="microseconds")
    conn.execute(
        "UPDATE outbox SET state = ?, reason = COALESCE(?, reason), receipt = COALESCE(?, receipt),"
        " attempts = attempts + ?, next_attempt_at = ?, updated_at = ? WHERE transaction_id = ?",
        (state, reason, receipt, 1 if count_attempt else 0, next_at,
         now.isoformat(timespec="microseconds"),
         transaction_id),
    )
    return True


def requeue_sending(conn: sqlite3.Connection) -> int:
    """After a restart, nothing in ``sending`` is known to have arrived: queue it again."""
    cur = conn.execute(
        "UPDATE outbox SET state = ?, next_attempt_at = ? WHERE state = ?",
        (OutboxState.QUEUED, utcnow(), OutboxState.SENDING),
    )
    return cur.rowcount


def depth(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Number of unsent transactions and the enqueue time of the oldest."""
    row = conn.execute(
        "SELECT COUNT(*), MIN(enqueued_at) FROM outbox WHERE state IN (?, ?)",
        (OutboxState.QUEUED, OutboxState.SENDING),
    ).fetchone()
    return row[0], row[1]
