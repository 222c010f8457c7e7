"""The station's memory: encrypted SQLite, the outbox, the hash-chained audit log.

Also key rotation, retention and backups, each in its own module.
"""

from appliance.store.errors import (
    DecryptionFailed,
    DiskFull,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    UnknownKey,
)

__all__ = ["DecryptionFailed", "DiskFull", "StoreBusy", "StoreClosed", "StoreCorrupt",
           "UnknownKey"]
