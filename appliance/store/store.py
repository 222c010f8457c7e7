"""The store the rest of the station talks to: atomic bookings, the outbox, the audit log.

Encryption happens before anything reaches SQLite; every write goes through the one writer
thread; a booking with its impressions, reports, templates, transaction, outbox entry and audit
entry is committed in one SQLite transaction or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from appliance.domain import Booking, Impression, Subject
from appliance.phrase import Phrase
from appliance.store import audit, backup, outbox, rotation
from appliance.store.crypto import BlobCipher, associated_data
from appliance.store.database import (
    NEAR_FULL_BYTES,
    check_integrity,
    disk_full_error,
    free_bytes,
    fsync_dir,
    integrity_problems,
    marker_path,
    migrate,
    not_corruption,
    private_file,
    private_folder,
    refuse_if_unresolved,
    stop_stamp,
    stopped_cleanly,
    utcnow,
    write_durably,
)
from appliance.store.errors import DiskFull, StoreCorrupt, is_corruption
from appliance.store.lock import StoreLock
from appliance.store.outbox import OutboxItem, OutboxState
from appliance.store.readers import Readers
from appliance.store.retention import MetadataPurge, RetentionReport, purge_expired, reclaim_space
from appliance.store.rotation import RotationProgress, RotationReport
from appliance.store.writer import WriterThread

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Accepted prints whose PNG is kept for the commit (a ten-print booking has 14, plus retakes).
LOSSLESS_KEPT = 24


@dataclass(frozen=True, slots=True)
class BookingSummary:
    """One line of the kiosk's booking list."""

    booking_id: str
    booking_number: str
    created_at: str
    impressions: int
    state: str
    reason: str | None
    receipt: str | None
    clock_trusted: bool


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """Figures for the admin page and telemetry."""

    queue_depth: int
    oldest_unsent_at: str | None
    audit_entries: int
    audit_head: str
    disk_free_mb: int
    bookings: int
    disk_total_mb: int = 0
    bookings_today: int = 0
    nfiq2_median_today: float | None = None


def subject_json(subject: Subject) -> str:
    """The subject's fields as JSON (encrypted before storage)."""
    return json.dumps({
        "last_name": subject.last_name, "first_name": subject.first_name,
        "date_of_birth": subject.date_of_birth, "sex": subject.sex,
        "descriptors": {str(k): v for k, v in subject.descriptors.items()},
    })


def subject_from_json(data: bytes) -> Subject:
    """The inverse of :func:`subject_json`."""
    raw = json.loads(data)
    descriptors = {int(k): str(v) for k, v in raw.pop("descriptors", {}).items()}
    return Subject(**raw, descriptors=descriptors)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless image bytes (the WSQ in the transaction is the lossy copy)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


class Store:
    """Encrypted SQLite store with one writer thread."""

    def __init__(self, path: Path, cipher: BlobCipher, *, min_free_mb: int = 0,
                 reserve_bytes: int = 0, keep_lossless: bool = False) -> None:
        self.path = path
        #: keep each committed print's lossless PNG until the purge; off, the committed booking
        #: holds its prints only in the transaction's WSQ (the PNG served the draft and the build)
        self.keep_lossless = keep_lossless
        self.cipher = cipher
        self.min_free_mb = min_free_mb
        self.reserve_bytes = reserve_bytes
        #: what the idle integrity check found wrong with the open file, if anything
        self.damage: str | None = None
        self._last_full_check: float | None = None
        self._writer = WriterThread(path, self._prepare)
        self._readers = Readers(path)
        self._lock = StoreLock(path)
        # PNG bytes of accepted prints, encoded once for the draft and reused by the commit
        self._lossless: OrderedDict[str, bytes] = OrderedDict()
        self._lossless_lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------

    def _prepare(self, conn: sqlite3.Connection) -> None:
        migrate(conn, self.path)
        requeued = outbox.requeue_sending(conn)
        if requeued:
            log.info("store: %d transactions were in flight at the last stop; queued again",
                     requeued)
        missing = sorted(set(rotation.key_usage(conn)) - self.cipher.key_ids)
        if missing:
            log.error("store: rows are sealed under key id(s) %s which are not loaded; they "
                      "cannot be read until that key is installed", ", ".join(missing))
        underway = rotation.progress(conn)
        if underway is not None:
            log.warning("store: a key rotation towards key %s is unfinished (%d rows done); "
                        "run 'booking-station store rotate-key' again", underway.to_key_id,
                        underway.rows_done)

    def open(self) -> None:
        """Lock, check integrity when the last stop was not clean, start the writer, migrate.

        Raises StoreBusy when another process holds the store, StoreCorrupt on a bad file and
        on every start after one until a technician restores a backup or starts a new store,
        DiskFull when the disk is too full to open it (the reserve, if any, given back first:
        then the store opens and can drain), StoreUnavailable for other errors that are not
        damage. Only StoreCorrupt moves anything aside.
        """
        private_folder(self.path.parent)
        self._lock.acquire()
        try:
            refuse_if_unresolved(self.path, backup.backups_dir(self.path))
            clean = stopped_cleanly(self.path)
            try:
                self._check_and_start(clean)
            except DiskFull as full:
                if not self.release_reserve():
                    raise
                log.warning("store: %s; the reserve was given back so the store can open and "
                            "drain", full)
                self._writer = WriterThread(self.path, self._prepare)
                self._check_and_start(clean)
        except BaseException:
            self._lock.release()
            raise
        self.keep_reserve()

    def _check_and_start(self, clean: bool) -> None:
        """The full check unless the last stop was clean, then the writer; errors sorted."""
        if not clean:
            check_integrity(self.path)
        try:
            private_file(self.path)  # a first start: 0600 whatever the umask, before SQLite
            self._writer.start()
        except DiskFull as exc:
            raise disk_full_error(self.path, exc) from exc
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
                raise StoreCorrupt(f"database {self.path} is damaged ({exc})") from exc
            raise not_corruption(self.path, exc) from exc

    # ---- the reserve ------------------------------------------------------------------------

    @property
    def reserve_path(self) -> Path:
        """Space held back so a store on a full disk can still open and drain its outbox."""
        return self.path.with_name(self.path.name + ".reserve")

    def keep_reserve(self) -> bool:
        """Hold ``reserve_bytes`` back (once there is room for it above the floor); True if held."""
        if self.reserve_bytes <= 0:
            return False
        if self._reserve_held():
            return True
        floor = self.min_free_mb * 2**20
        if free_bytes(self.path) < self.reserve_bytes + floor + NEAR_FULL_BYTES:
            return False
        try:
            write_durably(self.reserve_path, b"\0" * self.reserve_bytes)
        except OSError as exc:
            self.reserve_path.unlink(missing_ok=True)
            log.warning("store: no reserve held (%s)", exc)
            return False
        return True

    def space_problem(self, *, take_back: bool = True) -> Phrase | None:
        """Why the store is short of space beyond the floor: its reserve was given back.

        Bookings stay refused until the reserve can be held again (taken back here when room
        has come back, unless ``take_back`` is False: then only files are looked at, as the
        event loop may), so the space it freed serves only the drain.
        """
        if self.reserve_bytes <= 0:
            return None
        if self.keep_reserve() if take_back else self._reserve_held():
            return None
        need = (self.reserve_bytes + self.min_free_mb * 2**20 + NEAR_FULL_BYTES
                - free_bytes(self.path) + 2**20 - 1) // 2**20
        return Phrase(f"disk full: {max(1, need)} MB needed to hold the store's reserve again",
                      "disk_reserve", need=max(1, need))

    def _reserve_held(self) -> bool:
        return (self.reserve_path.exists()
                and self.reserve_path.stat().st_size >= self.reserve_bytes)

    def release_reserve(self) -> bool:
        """Give the reserve back to the disk; True if there was one."""
        if not self.reserve_path.exists():
            return False
        self.reserve_path.unlink()
        fsync_dir(self.path.parent)
        return True

    def close(self) -> None:
        """Stop the writer after the queued writes; stamp a clean stop; let go of the store."""
        self._readers.close()
        self._writer.stop()
        if not self._writer.alive:
            stop_stamp(self.path)
        self._lock.release()

    @property
    def writer_heartbeat(self) -> float:
        """Monotonic time of the writer's last sign of life."""
        return self._writer.heartbeat

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write job on the writer thread."""
        return await self._writer.run(fn)

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on this thread's read-only connection (call from a worker thread)."""
        return self._readers.run(fn)

    def lossless(self, impression: Impression) -> bytes:
        """The PNG of an impression's image, encoded once.

        Encoded at acceptance (for the draft) and kept for the commit of its booking, so that
        the submit does not encode every print again.
        """
        key = impression.impression_id
        with self._lossless_lock:
            png = self._lossless.get(key)
        if png is None:
            png = encode_png(impression.image)
            with self._lossless_lock:
                self._lossless[key] = png
                while len(self._lossless) > LOSSLESS_KEPT:
                    self._lossless.popitem(last=False)
        return png

    def _forget_lossless(self, booking: Booking) -> None:
        with self._lossless_lock:
            for imp in booking.impressions:
                self._lossless.pop(imp.impression_id, None)

    # ---- disk guard -----------------------------------------------------------------------

    def disk_free_mb(self) -> int:
        """Free MiB on the filesystem that holds the database."""
        return shutil.disk_usage(self.path.parent).free // (1024 * 1024)

    def check_space(self) -> None:
        """Raise DiskFull when free space is under the floor; nothing stored is touched.

        StoreCorrupt once the idle integrity check found damage.
        """
        if self.damage is not None:
            raise StoreCorrupt(self.damage)
        problem = self.space_problem()
        if problem is not None:
            raise DiskFull(problem + ": new bookings are refused until space is freed; nothing "
                           "stored was dropped")
        free = self.disk_free_mb()
        if free < self.min_free_mb:
            raise DiskFull(
                f"disk full: {self.min_free_mb - free} MB needed (only {free} MiB free on the "
                f"data disk, floor {self.min_free_mb} MiB): new bookings are refused until "
                "space is freed; nothing stored was dropped"
            )

    # ---- bookings -------------------------------------------------------------------------

    def _seal(self, plaintext: bytes, booking_id: str, record_id: str, kind: str
              ) -> tuple[bytes, str]:
        return self.cipher.seal(plaintext, associated_data(booking_id, record_id, kind))

    async def commit_booking(
        self,
        booking: Booking,
        transaction: bytes,
        *,
        content_type: str = "application/vnd.ansi-nist-itl",
        templates: dict[str, dict[str, bytes]] | None = None,
        priority: int = 5,
        actor: str = "officer",
    ) -> str:
        """Store a finished booking atomically and queue its transaction; returns its id."""
        self.check_space()
        transaction_id = uuid.uuid4().hex
        rows = await asyncio.to_thread(
            self._sealed_rows, booking, transaction, transaction_id, templates or {}
        )

        def commit(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO bookings (booking_id, booking_number_enc, subject_enc, key_id,"
                " created_at, committed_at, clock_trusted, annotations)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows["booking"],
            )
            conn.executemany(
                "INSERT INTO impressions (impression_id, booking_id, position, impression_type,"
                " ppi, width, height, image_enc, key_id, captured_at, retakes, override_reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows["impressions"],
            )
            conn.executemany(
                "INSERT INTO quality_reports (impression_id, nfiq2, failed, backend, measures)"
                " VALUES (?, ?, ?, ?, ?)",
                rows["reports"],
            )
            conn.executemany(
                "INSERT INTO templates (impression_id, format, data_enc, key_id)"
                " VALUES (?, ?, ?, ?)",
                rows["templates"],
            )
            conn.execute(
                "INSERT INTO transactions (transaction_id, booking_id, content_type, size, sha256,"
                " data_enc, key_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (transaction_id, booking.booking_id, content_type, *rows["transaction"]),
            )
            outbox.enqueue(conn, transaction_id, booking.booking_id, priority)
            for table in ("draft_impressions", "draft_annotations", "drafts"):
                conn.execute(f"DELETE FROM {table} WHERE booking_id = ?", (booking.booking_id,))
            audit.append(
                conn,
                actor,
                "booking_committed",
                {
                    "booking_id": booking.booking_id,
                    "transaction_id": transaction_id,
                    "impressions": len(booking.impressions),
                },
            )
            conn.execute("COMMIT")

        await self.write(commit)
        self._forget_lossless(booking)
        return transaction_id

    def _sealed_rows(
        self,
        booking: Booking,
        transaction: bytes,
        transaction_id: str,
        templates: dict[str, dict[str, bytes]],
    ) -> dict[str, Any]:
        bid = booking.booking_id
        number_enc, key_id = self._seal(booking.booking_number.encode(), bid, bid, "number")
        subject_enc, _ = self._seal(subject_json(booking.subject).encode(), bid, bid, "subject")
        annotations = json.dumps({int(p): a.value for p, a in booking.annotations.items()})
        rows: dict[str, Any] = {
            "booking": (
                bid, number_enc, subject_enc, key_id, booking.created_at.isoformat(), utcnow(),
                int(booking.clock_trusted), annotations,
            ),
            "impressions": [],
            "reports": [],
            "templates": [],
        }
        for imp in booking.impressions:
            image_enc: bytes | None = None
            kid = key_id
            if self.keep_lossless:
                image_enc, kid = self._seal(self.lossless(imp), bid, imp.impression_id, "image")
            h, w = imp.image.shape
            rows["impressions"].append(
                (imp.impression_id, bid, int(imp.position), int(imp.impression_type), imp.ppi, w,
                 h, image_enc, kid, imp.captured_at.isoformat(), imp.retakes, imp.override_reason)
            )
            if imp.quality is not None:
                q = imp.quality
                rows["reports"].append(
                    (imp.impression_id, q.nfiq2, int(q.failed), q.backend, json.dumps(q.measures))
                )
            for fmt, data in templates.get(imp.impression_id, {}).items():
                data_enc, kid = self._seal(data, bid, imp.impression_id, f"template:{fmt}")
                rows["templates"].append((imp.impression_id, fmt, data_enc, kid))
        tx_enc, kid = self._seal(transaction, bid, transaction_id, "transaction")
        rows["transaction"] = (len(transaction), hashlib.sha256(transaction).hexdigest(), tx_enc,
                               kid)
        return rows

    async def load_transaction(self, transaction_id: str) -> bytes:
        """The decrypted transaction bytes (for upload)."""

        def load(conn: sqlite3.Connection) -> tuple[str, bytes | None, str]:
            row = conn.execute(
                "SELECT booking_id, data_enc, key_id FROM transactions WHERE transaction_id = ?",
                (transaction_id,),
            ).fetchone()
            if row is None:
                raise KeyError(transaction_id)
            return row

        booking_id, blob, key_id = await asyncio.to_thread(self.read, load)
        if blob is None:
            raise KeyError(f"{transaction_id}: biometric data already purged")
        return self.cipher.open(
            blob, key_id, associated_data(booking_id, transaction_id, "transaction")
        )

    # ---- outbox ---------------------------------------------------------------------------

    async def outbox_due(self, limit: int, exclude: frozenset[str] = frozenset()
                         ) -> list[OutboxItem]:
        """Transactions ready to send, in delivery order."""
        return await asyncio.to_thread(self.read, lambda c: outbox.due(c, limit, exclude))

    async def mark_sending(self, transaction_id: str) -> None:
        """The upload of a transaction started."""

        def run(conn: sqlite3.Connection) -> None:
            outbox.set_state(conn, transaction_id, OutboxState.SENDING, count_attempt=True)

        await self.write(run)

    async def mark_retry(self, transaction_id: str, delay_s: float, reason: str) -> None:
        """Put a transaction back in the queue for a later attempt."""

        def run(conn: sqlite3.Connection) -> None:
            outbox.set_state(conn, transaction_id, OutboxState.QUEUED, reason=reason,
                             retry_in_s=delay_s)

        await self.write(run)

    async def mark_stored(self, transaction_id: str, receipt: dict[str, Any]) -> bool:
        """Central holds the transaction: delivery of its booking has ended."""
        receipt_json = json.dumps(receipt, sort_keys=True)

        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            changed = outbox.set_state(conn, transaction_id, OutboxState.STORED,
                                       receipt=receipt_json)
            if changed:
                audit.append(conn, "central", "acknowledged",
                             {"transaction_id": transaction_id, "receipt": receipt.get("receipt")})
            conn.execute("COMMIT")
            return changed

        return await self.write(run)

    async def mark_rejected(self, transaction_id: str, reason: str) -> bool:
        """Central refused the transaction, with a reason for the officer."""

        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            changed = outbox.set_state(conn, transaction_id, OutboxState.REJECTED, reason=reason)
            if changed:
                audit.append(conn, "central", "rejected",
                             {"transaction_id": transaction_id, "reason": reason[:200]})
            conn.execute("COMMIT")
            return changed

        return await self.write(run)

    # ---- audit ----------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, detail: dict[str, Any]) -> str:
        """Append one audit entry on its own; returns the new head."""

        def run(conn: sqlite3.Connection) -> str:
            conn.execute("BEGIN IMMEDIATE")
            digest = audit.append(conn, actor, action, detail)
            conn.execute("COMMIT")
            return digest

        return await self.write(run)

    async def command_nonces(self, since: datetime) -> list[tuple[str, datetime]]:
        """Nonces of the signed remote commands audited at or after ``since``, with when.

        The command gate's memory of used nonces lives in RAM; on start it is seeded from
        here, so a signed command replayed after a restart (still inside its freshness
        window) is refused as it would have been before.
        """
        cutoff = since.astimezone(UTC).isoformat(timespec="microseconds")

        def run(conn: sqlite3.Connection) -> list[tuple[str, datetime]]:
            rows = conn.execute(
                "SELECT at, detail FROM audit_log WHERE action = 'remote_command' AND at >= ?"
                " ORDER BY seq",
                (cutoff,),
            ).fetchall()
            out = []
            for at, detail in rows:
                try:
                    nonce = json.loads(detail).get("nonce")
                except (ValueError, AttributeError):
                    continue
                if isinstance(nonce, str) and nonce:
                    out.append((nonce, datetime.fromisoformat(at)))
            return out

        return await asyncio.to_thread(self.read, run)

    # ---- retention ------------------------------------------------------------------------

    async def purge_delivered(self, grace: timedelta, now: datetime | None = None) -> int:
        """Erase biometric blobs of bookings whose transactions central has stored > grace ago."""
        cutoff = ((now or datetime.now(UTC)) - grace).isoformat(timespec="microseconds")

        def run(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT b.booking_id FROM bookings b WHERE b.biometrics_purged_at IS NULL"
                    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.booking_id = b.booking_id"
                    "   AND (o.state != ? OR o.updated_at > ?))"
                    " AND EXISTS (SELECT 1 FROM outbox o WHERE o.booking_id = b.booking_id)",
                    (OutboxState.STORED, cutoff),
                )
            ]
            for bid in ids:
                conn.execute("UPDATE impressions SET image_enc = NULL WHERE booking_id = ?", (bid,))
                conn.execute(
                    "UPDATE templates SET data_enc = NULL WHERE impression_id IN"
                    " (SELECT impression_id FROM impressions WHERE booking_id = ?)",
                    (bid,),
                )
                conn.execute("UPDATE transactions SET data_enc = NULL WHERE booking_id = ?", (bid,))
                conn.execute("UPDATE bookings SET biometrics_purged_at = ? WHERE booking_id = ?",
                             (utcnow(), bid))
                audit.append(conn, "station", "purge", {"booking_id": bid})
            conn.execute("COMMIT")
            return len(ids)

        return await self.write(run)

    async def purge_expired_metadata(
        self, retention: timedelta, now: datetime | None = None
    ) -> MetadataPurge:
        """Delete delivered bookings and the audit prefix older than ``retention``.

        Only bookings whose every transaction central has stored go; the audit chain loses a
        whole prefix at most and keeps an anchor, so it still verifies.
        """
        cutoff = ((now or datetime.now(UTC)) - retention).isoformat(timespec="microseconds")
        result = await self.write(lambda conn: purge_expired(conn, cutoff))
        if result.bookings or result.audit_entries:
            log.info("store: retention deleted %d bookings and %d audit entries",
                     result.bookings, result.audit_entries)
        return result

    async def reclaim_space(self) -> int:
        """Hand free pages back to the filesystem (incremental vacuum); returns pages freed."""
        return await self.write(lambda conn: reclaim_space(conn, self.path))

    async def run_retention(
        self,
        *,
        grace: timedelta,
        retention: timedelta,
        now: datetime | None = None,
        reclaim: bool = True,
    ) -> RetentionReport:
        """The whole retention pass: biometrics after ``grace``, metadata after ``retention``."""
        purged = await self.purge_delivered(grace, now)
        expired = await self.purge_expired_metadata(retention, now)
        pages = await self.reclaim_space() if reclaim and (purged or expired.bookings
                                                           or expired.audit_entries) else 0
        return RetentionReport(purged, expired.bookings, expired.audit_entries, pages)

    # ---- backups --------------------------------------------------------------------------

    @property
    def backups_dir(self) -> Path:
        """Where this store's backups go."""
        return backup.backups_dir(self.path)

    def list_backups(self) -> list[Path]:
        """The backups of this store, oldest first."""
        return backup.list_backups(self.path)

    async def backup_now(self, keep: int = 7, now: datetime | None = None) -> Path:
        """Take a consistent backup (online backup API) and keep the newest ``keep``."""
        return await asyncio.to_thread(
            backup.take_backup, self.path, keep=keep, min_free_mb=self.min_free_mb, now=now
        )

    async def backup_if_due(
        self, every: timedelta = timedelta(hours=24), keep: int = 7, now: datetime | None = None
    ) -> Path | None:
        """Take a backup when the newest is older than ``every`` (or there is none)."""
        now = now or datetime.now(UTC)
        found = self.list_backups()
        newest = backup.backup_time(self.path, found[-1]) if found else None
        if newest is not None and now - newest < every:
            return None
        return await self.backup_now(keep, now)

    async def maintain(
        self,
        *,
        grace: timedelta,
        retention: timedelta,
        backup_every: timedelta = timedelta(hours=24),
        backup_keep: int = 7,
        interval: timedelta = timedelta(hours=1),
        check_every: timedelta = timedelta(hours=24),
    ) -> None:
        """Run forever: a backup when due (so one at start), then retention, every ``interval``.

        Meant to be one task of the station; each failure is logged and the loop carries on.
        """
        while True:
            try:
                await self.backup_if_due(backup_every, backup_keep)
            except DiskFull as exc:
                log.warning("store: %s", exc)
            except Exception:  # a task boundary: log with the traceback and carry on
                log.exception("store: backup failed")
            try:
                await self.run_retention(grace=grace, retention=retention)
            except Exception:  # a task boundary: log with the traceback and carry on
                log.exception("store: retention failed")
            try:
                await self.check_whole_file_if_due(check_every)
            except Exception:  # a task boundary: log with the traceback and carry on
                log.exception("store: the integrity check could not run")
            await asyncio.sleep(interval.total_seconds())

    async def check_whole_file_if_due(self, every: timedelta) -> str | None:
        """The full integrity check, off the start path: at most once per ``every``.

        Damage found here is kept in :attr:`damage` (bookings are refused from then on) and a
        marker is left so the next start waits for a technician; nothing is moved while open.
        Returns what was found, or None when the check was not due or passed.
        """
        now = time.monotonic()
        last = self._last_full_check
        if last is not None and now - last < every.total_seconds():
            return None
        self._last_full_check = now
        try:
            detail = await asyncio.to_thread(integrity_problems, self.path)
        except DiskFull as exc:
            log.warning("store: integrity check skipped: %s", exc)
            return None
        if not detail:
            return None
        self.damage = (f"the store failed its integrity check ({detail}); bookings are refused "
                       "until a technician restores the backup or starts a new store")
        log.critical("store: %s", self.damage)
        try:
            write_durably(marker_path(self.path), (self.damage + "\n").encode())
        except OSError as exc:
            log.critical("store: the marker could not be written (%s)", exc)
        return detail

    # ---- keys -----------------------------------------------------------------------------

    def key_usage(self) -> dict[str, int]:
        """How many rows name each key id (blob-holding tables; call from a worker thread)."""
        return self.read(rotation.key_usage)

    def rotation_progress(self) -> RotationProgress | None:
        """The key rotation under way, if any."""
        return self.read(rotation.progress)

    async def rotate_key(
        self,
        *,
        batch_rows: int = 64,
        batch_bytes: int = 8 * 1024 * 1024,
        actor: str = "technician",
        on_batch: Callable[[RotationProgress], None] | None = None,
    ) -> RotationReport:
        """Re-seal every blob under the cipher's current key, one short transaction per batch.

        Interrupting it loses nothing: rows keep the id of the key that sealed them, so with
        the old key loaded as a previous key the store works and a new call carries on. When no
        row names an old key the rotation is audited (``store_key_rotated``) and complete.
        """
        rotation.check_loaded(await asyncio.to_thread(self.key_usage), self.cipher)
        rows = 0
        while True:
            count, progress = await self.write(
                lambda conn: rotation.rotate_batch(conn, self.cipher, batch_rows, batch_bytes)
            )
            if count == 0:
                break
            rows += count
            if on_batch is not None and progress is not None:
                on_batch(progress)
        done = await self.write(lambda conn: rotation.finish(conn, self.cipher, actor))
        if done is None:  # a concurrent writer sealed rows under an old key meanwhile
            return RotationReport(self.cipher.current_id, (), rows, rows, False)
        if done.from_key_ids:
            # the WAL still holds page images with the old ciphertext: checkpoint and truncate
            # it (secure_delete already zeroed the old cells in the database file itself)
            await self.write(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"
                                                       ).fetchall())
            log.info("store: key rotation to %s complete (%d rows)", done.to_key_id,
                     done.rows_total)
        return RotationReport(done.to_key_id, done.from_key_ids, rows, done.rows_total, True)

    # ---- reads for pages and telemetry ----------------------------------------------------

    def bookings(self, limit: int = 50) -> list[BookingSummary]:
        """Newest bookings with their delivery state (decrypts the booking number)."""

        def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT b.booking_id, b.booking_number_enc, b.key_id, b.created_at,"
                " (SELECT COUNT(*) FROM impressions i WHERE i.booking_id = b.booking_id),"
                " o.state, o.reason, o.receipt, b.clock_trusted FROM bookings b"
                " LEFT JOIN outbox o ON o.booking_id = b.booking_id"
                " ORDER BY b.committed_at DESC LIMIT ?",
                (limit,),
            ).fetchall()

        out = []
        for bid, number_enc, key_id, created, count, state, reason, receipt, trusted in self.read(
            run
        ):
            number = self.cipher.open(number_enc, key_id, associated_data(bid, bid, "number"))
            out.append(
                BookingSummary(bid, number.decode(), created, count, state or "unknown", reason,
                               receipt, bool(trusted))
            )
        return out

    def health(self) -> StoreHealth:
        """Queue depth, oldest unsent, audit head, disk free."""
        midnight = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00")

        def run(conn: sqlite3.Connection) -> tuple[Any, ...]:
            depth, oldest = outbox.depth(conn)
            seq, head = audit.head(conn)
            count = conn.execute("SELECT COUNT(*) FROM bookings").fetchone()[0]
            today = conn.execute("SELECT COUNT(*) FROM bookings WHERE committed_at >= ?",
                                 (midnight,)).fetchone()[0]
            scores = [r[0] for r in conn.execute(
                "SELECT q.nfiq2 FROM quality_reports q JOIN impressions i USING (impression_id)"
                " JOIN bookings b USING (booking_id)"
                " WHERE b.committed_at >= ? AND q.nfiq2 IS NOT NULL", (midnight,))]
            return depth, oldest, seq, head, count, today, scores

        depth, oldest, seq, head, count, today, scores = self.read(run)
        usage = shutil.disk_usage(self.path.parent)
        return StoreHealth(depth, oldest, seq, head, usage.free // (1024 * 1024), count,
                           disk_total_mb=usage.total // (1024 * 1024), bookings_today=today,
                           nfiq2_median_today=statistics.median(scores) if scores else None)

    def verify_audit(self) -> audit.ChainReport:
        """Walk the audit chain."""
        return self.read(audit.verify)

    def audit_entries(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, newest first (ids and actions, never subjects)."""

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute("SELECT seq, at, actor, action, detail FROM audit_log"
                                " ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
            return [dict(zip(("seq", "at", "actor", "action", "detail"), r, strict=True))
                    for r in rows]

        return self.read(run)

    def outbox_state(self, transaction_id: str) -> str | None:
        """The delivery state of one transaction."""
        row = self.read(
            lambda c: c.execute(
                "SELECT state FROM outbox WHERE transaction_id = ?", (transaction_id,)
            ).fetchone()
        )
        return row[0] if row else None
