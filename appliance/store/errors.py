"""The store's branch of the exception tree."""

from __future__ import annotations

from appliance.errors import StoreError


class DiskFull(StoreError):
    """Free space is below the configured floor: new bookings are refused, nothing is dropped."""


class StoreCorrupt(StoreError):
    """The database failed its integrity check and was moved aside."""


class StoreClosed(StoreError):
    """The writer thread is not running."""


class DecryptionFailed(StoreError):
    """A blob does not open with its key and associated data (wrong key, tampered row)."""


class UnknownKey(StoreError):
    """A blob names a key id that is not loaded."""
