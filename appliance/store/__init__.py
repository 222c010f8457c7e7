"""The station's memory: encrypted SQLite, the outbox and the hash-chained audit log."""

from appliance.store.errors import (
    DiskFull,
    StoreClosed,
    StoreCorrupt,
)

__all__ = ["DiskFull", "StoreClosed", "StoreCorrupt"]
