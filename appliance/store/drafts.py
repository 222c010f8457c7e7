"""Bookings in progress, on disk print by print.

A print the officer saw accepted is on disk at that moment, encrypted, before the booking is
complete: if the power goes or the service restarts mid-booking, the kiosk offers the draft
again with every accepted print. The final booking commit removes the draft in the same SQLite
transaction, so a booking is either a draft or committed, never both and never neither.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from datetime import datetime

import numpy as np
from PIL import Image

from appliance.domain import (
    Annotation,
    Booking,
    Impression,
    ImpressionType,
    Position,
)
from appliance.store.crypto import associated_data
from appliance.store.database import utcnow
from appliance.store.store import Store, subject_from_json, subject_json


class DraftStore:
    """Drafts live in the same database, through the same writer."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def begin(self, booking: Booking) -> None:
        """Record a new booking in progress."""
        cipher, bid = self.store.cipher, booking.booking_id
        number_enc, key_id = cipher.seal(booking.booking_number.encode(),
                                         associated_data(bid, bid, "draft-number"))
        subject = subject_json(booking.subject)
        subject_enc, _ = cipher.seal(subject.encode(), associated_data(bid, bid, "draft-subject"))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO drafts (booking_id, booking_number_enc, subject_enc, key_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (bid, number_enc, subject_enc, key_id, booking.created_at.isoformat(), utcnow()),
            )

        self.store.check_space()
        await self.store.write(run)

    async def describe(self, booking: Booking) -> None:
        """Replace the subject's details of a booking in progress (sealed again with its number)."""
        cipher, bid = self.store.cipher, booking.booking_id
        number_enc, key_id = cipher.seal(booking.booking_number.encode(),
                                         associated_data(bid, bid, "draft-number"))
        subject_enc, _ = cipher.seal(subject_json(booking.subject).encode(),
                                     associated_data(bid, bid, "draft-subject"))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE drafts SET booking_number_enc = ?, subject_enc = ?, key_id = ?,"
                         " updated_at = ? WHERE booking_id = ?",
                         (number_enc, subject_enc, key_id, utcnow(), bid))

        await self.store.write(run)

    async def accept(self, booking: Booking, impression: Impression) -> None:
        """Persist one accepted print (replacing an earlier one at the same position)."""
        bid = booking.booking_id
        png = await asyncio.to_thread(self.store.lossless, impression)
        blob, key_id = self.store.cipher.seal(
            png, associated_data(bid, impression.impression_id, "draft-image")
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "DELETE FROM draft_impressions WHERE booking_id = ? AND position = ?",
                (bid, int(impression.position)),
            )
            conn.execute(
                "INSERT INTO draft_impressions (impression_id, booking_id, position,"
                " impression_type, ppi, image_enc, key_id, captured_at, retakes, override_reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (impression.impression_id, bid, int(impression.position),
                 int(impression.impression_type), impression.ppi, blob, key_id,
                 impression.captured_at.isoformat(), impression.retakes,
                 impression.override_reason),
            )
            conn.execute("UPDATE drafts SET updated_at = ? WHERE booking_id = ?", (utcnow(), bid))
            conn.execute("COMMIT")

        self.store.check_space()
        await self.store.write(run)

    async def annotate(self, booking: Booking, position: Position, annotation: Annotation | None
                       ) -> None:
        """Record (or clear) XX / UP for a position."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM draft_annotations WHERE booking_id = ? AND position = ?",
                         (booking.booking_id, int(position)))
            if annotation is not None:
                conn.execute("INSERT INTO draft_annotations VALUES (?, ?, ?)",
                             (booking.booking_id, int(position), annotation.value))

        await self.store.write(run)

    async def discard(self, booking_id: str) -> None:
        """The officer cancelled the booking."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM draft_impressions WHERE booking_id = ?", (booking_id,))
            conn.execute("DELETE FROM draft_annotations WHERE booking_id = ?", (booking_id,))
            conn.execute("DELETE FROM drafts WHERE booking_id = ?", (booking_id,))
            conn.execute("COMMIT")

        await self.store.write(run)

    def load(self) -> list[Booking]:
        """Every booking in progress with its accepted prints (call from a worker thread)."""

        def run(conn: sqlite3.Connection) -> tuple[list, list, list]:
            return (
                conn.execute("SELECT booking_id, booking_number_enc, subject_enc, key_id,"
                             " created_at FROM drafts ORDER BY created_at").fetchall(),
                conn.execute("SELECT impression_id, booking_id, position, impression_type, ppi,"
                             " image_enc, key_id, captured_at, retakes, override_reason"
                             " FROM draft_impressions").fetchall(),
                conn.execute("SELECT booking_id, position, annotation FROM draft_annotations"
                             ).fetchall(),
            )

        drafts, impressions, annotations = self.store.read(run)
        cipher = self.store.cipher
        bookings: dict[str, Booking] = {}
        for bid, number_enc, subject_enc, key_id, created in drafts:
            number = cipher.open(number_enc, key_id, associated_data(bid, bid, "draft-number"))
            subject = subject_from_json(
                cipher.open(subject_enc, key_id, associated_data(bid, bid, "draft-subject"))
            )
            bookings[bid] = Booking(booking_number=number.decode(), subject=subject,
                                    booking_id=bid, created_at=datetime.fromisoformat(created))
        for iid, bid, pos, itype, ppi, blob, key_id, at, retakes, reason in impressions:
            if bid not in bookings:
                continue
            png = cipher.open(blob, key_id, associated_data(bid, iid, "draft-image"))
            image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
            bookings[bid].impressions.append(
                Impression(position=Position(pos), impression_type=ImpressionType(itype),
                           image=image, ppi=ppi, impression_id=iid,
                           captured_at=datetime.fromisoformat(at), retakes=retakes,
                           override_reason=reason)
            )
        for bid, pos, ann in annotations:
            if bid in bookings:
                bookings[bid].annotations[Position(pos)] = Annotation(ann)
        return list(bookings.values())

