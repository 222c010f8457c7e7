"""The station's health history for the technician page's charts: small, bounded, metadata only.

A sample every few minutes (queue depth, age of the oldest unsent booking, bookings delivered so
far, scanner error and reconnect counters, disk, temperature) is kept for :data:`KEEP_DAYS`
days; older rows go at each insert, so the table never holds more than a month of samples.
Bookings per day and the NFIQ 2 distribution per finger position are read from the metadata
the store keeps anyway (commit times, quality scores), never from a print.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.store.outbox import OutboxState

KEEP_DAYS = 31
#: NFIQ 2 scores are counted in these bins (0-9, 10-19, ... 90-100).
NFIQ2_BINS = 10


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of the figures the charts draw."""

    queue_depth: int
    oldest_unsent_s: float | None
    delivered_total: int
    scanner_errors: int
    scanner_reconnects: int
    disk_free_mb: int
    cpu_temperature_c: float | None


def delivered_total(conn: sqlite3.Connection) -> int:
    """How many transactions central holds (the drain rate is its slope)."""
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE state = ?",
                            (OutboxState.STORED,)).fetchone()[0])


def record(sample: Sample, at: datetime | None = None) -> Callable[[sqlite3.Connection], None]:
    """A write job: keep ``sample`` and forget samples older than :data:`KEEP_DAYS`."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)

    def run(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO health_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (moment.isoformat(timespec="seconds"), *astuple(sample)))
        horizon = moment - timedelta(days=KEEP_DAYS)
        conn.execute("DELETE FROM health_samples WHERE at < ?",
                     (horizon.isoformat(timespec="seconds"),))
        conn.execute("COMMIT")

    return run


def series(conn: sqlite3.Connection, since: datetime, bucket_s: int) -> dict[str, list[Any]]:
    """Samples since ``since`` in buckets of ``bucket_s`` seconds, as columns for a chart.

    ``t`` is each bucket's start (Unix seconds); ``queue`` its highest depth; ``drained`` the
    bookings delivered during it; ``errors`` and ``reconnects`` the scanner counters' growth
    (a restart that reset a counter counts from zero again).
    """
    rows = conn.execute(
        "SELECT at, queue_depth, delivered_total, scanner_errors, scanner_reconnects"
        " FROM health_samples WHERE at >= ? ORDER BY at",
        (since.astimezone(UTC).isoformat(timespec="seconds"),)).fetchall()
    out: dict[str, list[Any]] = {"t": [], "queue": [], "drained": [], "errors": [],
                                 "reconnects": []}
    last: tuple[int, int, int] | None = None
    for at, depth, delivered, errors, reconnects in rows:
        start = int(datetime.fromisoformat(at).timestamp()) // bucket_s * bucket_s
        grew = (0, 0, 0) if last is None else tuple(
            now - before if now >= before else now
            for now, before in zip((delivered, errors, reconnects), last, strict=True))
        last = (delivered, errors, reconnects)
        if not out["t"] or out["t"][-1] != start:
            out["t"].append(start)
            out["queue"].append(depth)
            for key, value in zip(("drained", "errors", "reconnects"), grew, strict=True):
                out[key].append(value)
            continue
        out["queue"][-1] = max(out["queue"][-1], depth)
        for key, value in zip(("drained", "errors", "reconnects"), grew, strict=True):
            out[key][-1] += value
    return out


def bookings_per_day(conn: sqlite3.Connection, days: int, now: datetime | None = None
                     ) -> dict[str, list[Any]]:
    """Bookings committed on each of the last ``days`` days (UTC), zeros included."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    counts = dict(conn.execute(
        "SELECT substr(committed_at, 1, 10), COUNT(*) FROM bookings"
        " WHERE committed_at >= ? GROUP BY 1", (first.isoformat(),)).fetchall())
    out: dict[str, list[Any]] = {"t": [], "bookings": []}
    for n in range(days):
        day = first + timedelta(days=n)
        out["t"].append(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))
        out["bookings"].append(int(counts.get(day.isoformat(), 0)))
    return out


def nfiq2_by_position(conn: sqlite3.Connection, since: datetime) -> dict[str, list[int]]:
    """Per finger position, how many prints scored in each NFIQ 2 bin since ``since``."""
    rows = conn.execute(
        "SELECT i.position, MIN(q.nfiq2, 100) / 10, COUNT(*) FROM impressions i"
        " JOIN quality_reports q USING (impression_id)"
        " WHERE q.nfiq2 IS NOT NULL AND i.captured_at >= ? GROUP BY 1, 2",
        (since.astimezone(UTC).isoformat(),)).fetchall()
    out: dict[str, list[int]] = {}
    for position, band, count in rows:
        bins = out.setdefault(str(position), [0] * NFIQ2_BINS)
        bins[min(int(band), NFIQ2_BINS - 1)] += int(count)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


async def keep_history(store: Any, read: Callable[[], Sample], interval_s: float) -> None:
    """Record ``read()`` every ``interval_s`` seconds until cancelled (a task of the station).

    ``read`` may block briefly (store reads): it runs in a worker thread. A failed sample is
    logged and the next one tried; the history is a convenience, never a reason to stop.
    """
    import asyncio
    import logging

    log = logging.getLogger(__name__)
    while True:
        try:
            sample = await asyncio.to_thread(read)
            await store.write(record(sample))
        except Exception:  # a task boundary: the charts miss one point
            log.warning("health history: a sample was not recorded", exc_info=True)
        await asyncio.sleep(interval_s)
