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


class StoreUnavailable(StoreError):
    """The database could not be opened or read, for a reason that is not corruption.

    Nothing is moved aside or marked: the store is sound as far as anyone knows, and the next
    start (or the next try) opens it as it is.
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


#: SQLite's primary result codes that mean the file's content is damaged.
_CORRUPTION_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def is_corruption(exc: BaseException) -> bool:
    """True when SQLite says the file itself is damaged (not that it could not read or write)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPTION_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


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
