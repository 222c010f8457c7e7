"""The store's branch of the exception tree, and the one place SQLite errors are translated."""

from __future__ import annotations

import sqlite3

from appliance.errors import StoreError


class DiskFull(StoreError):
    """Free space is below the configured floor, or SQLite found the disk full.

    New bookings are refused; nothing already stored is dropped or damaged.
    """


class StoreCorrupt(StoreError):
    """The database failed its integrity check (and was moved aside), or is missing.

    The station refuses bookings until a technician restores a backup or starts a new store.
    """


class StoreBusy(StoreError):
    """Another process (a running station, a technician's tool) holds the store."""


class StoreClosed(StoreError):
    """The writer thread is not running."""


class DecryptionFailed(StoreError):
    """A blob does not open with its key and associated data (wrong key, tampered row)."""


class UnknownKey(StoreError):
    """A blob names a key id that is not loaded."""


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's ``SQLITE_FULL`` ("database or disk is full")."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) == sqlite3.SQLITE_FULL
    return "database or disk is full" in str(exc)


def translate(exc: BaseException) -> BaseException:
    """Map a library error met by a store job to the store's own tree (others pass through).

    The original stays attached as ``__cause__``, as ``raise ... from exc`` would leave it.
    """
    if is_disk_full(exc):
        err = DiskFull(
            "the data disk is full: SQLite could not write, so this write was rolled back; "
            "nothing stored earlier was touched. Free space on the data disk."
        )
        err.__cause__ = exc
        return err
    return exc
