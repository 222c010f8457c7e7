"""Named, ordered migrations: each runs once, in a transaction, and is recorded by name.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE bookings (
            booking_id TEXT PRIMARY KEY,
            booking_number_enc BLOB NOT NULL,
            subject_enc BLOB NOT NULL,
            key_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            committed_at TEXT NOT NULL,
            clock_trusted INTEGER NOT NULL,
            annotations TEXT NOT NULL DEFAULT '{}',
            biometrics_purged_at TEXT
        );
        CREATE TABLE impressions (
            impression_id TEXT PRIMARY KEY,
            booking_id TEXT NOT NULL REFERENCES bookings(booking_id),
            position INTEGER NOT NULL,
            impression_type INTEGER NOT NULL,
            ppi INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            image_enc BLOB,
            key_id TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            retakes INTEGER NOT NULL DEFAULT 0,
            override_reason TEXT
        );
        CREATE INDEX impressions_booking ON impressions(booking_id);
        CREATE TABLE quality_reports (
            impression_id TEXT PRIMARY KEY REFERENCES impressions(impression_id),
            nfiq2 INTEGER,
            failed INTEGER NOT NULL DEFAULT 0,
            backend TEXT NOT NULL DEFAULT '',
            measures TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE templates (
            impression_id TEXT NOT NULL REFERENCES impressions(impression_id),
            format TEXT NOT NULL,
            data_enc BLOB,
            key_id TEXT NOT NULL,
            PRIMARY KEY (impression_id, format)
        );
        CREATE TABLE transactions (
            transaction_id TEXT PRIMARY KEY,
            booking_id TEXT NOT NULL REFERENCES bookings(booking_id),
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            data_enc BLOB,
            key_id TEXT NOT NULL
        );
        CREATE TABLE outbox (
            transaction_id TEXT PRIMARY KEY REFERENCES transactions(transaction_id),
            booking_id TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 5,
            seq INTEGER NOT NULL,
            enqueued_at TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            reason TEXT,
            receipt TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX outbox_due ON outbox(state, priority, seq);
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        "0002_drafts",
        """
        CREATE TABLE drafts (
            booking_id TEXT PRIMARY KEY,
            booking_number_enc BLOB NOT NULL,
            subject_enc BLOB NOT NULL,
            key_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE draft_impressions (
            impression_id TEXT PRIMARY KEY,
            booking_id TEXT NOT NULL REFERENCES drafts(booking_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            impression_type INTEGER NOT NULL,
            ppi INTEGER NOT NULL,
            image_enc BLOB NOT NULL,
            key_id TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            retakes INTEGER NOT NULL DEFAULT 0,
            override_reason TEXT
        );
        CREATE TABLE draft_annotations (
            booking_id TEXT NOT NULL REFERENCES drafts(booking_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            annotation TEXT NOT NULL,
            PRIMARY KEY (booking_id, position)
        );
        """,
    ),
    (
        "0003_key_and_retention_indexes",
        # Key rotation finds the rows still under an old key, and the open-time check lists the
        # keys in use, through these indexes: without them SQLite would walk every blob's
        # overflow pages to reach the key_id column stored after it.
        """
        CREATE INDEX bookings_key ON bookings(key_id);
        CREATE INDEX bookings_committed ON bookings(committed_at);
        CREATE INDEX impressions_key ON impressions(key_id);
        CREATE INDEX templates_key ON templates(key_id);
        CREATE INDEX transactions_key ON transactions(key_id);
        CREATE INDEX transactions_booking ON transactions(booking_id);
        CREATE INDEX outbox_booking ON outbox(booking_id);
        CREATE INDEX drafts_key ON drafts(key_id);
        CREATE INDEX draft_impressions_key ON draft_impressions(key_id);
        CREATE INDEX draft_impressions_booking ON draft_impressions(booking_id)
        """,
    ),
    (
        "0004_health_samples",
        # The technician page's charts: one row every few minutes, kept for 31 days.
        """
        CREATE TABLE health_samples (
            at TEXT PRIMARY KEY,
            queue_depth INTEGER NOT NULL,
            oldest_unsent_s REAL,
            delivered_total INTEGER NOT NULL,
            scanner_errors INTEGER NOT NULL,
            scanner_reconnects INTEGER NOT NULL,
            disk_free_mb INTEGER NOT NULL,
            cpu_temperature_c REAL
        )
        """,
    ),
]
