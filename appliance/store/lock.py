"""One process at a time owns the store file.

SQLite would let a technician's ``restore-backup`` swap the file under a running station, or two
stations share one database; both end in lost bookings. An exclusive ``flock`` on a lock file
beside the database says who holds it. The kernel drops the lock when the holder dies, even by
SIGKILL, so a crash never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from appliance.store.database import private_folder
from appliance.store.errors import StoreBusy


def lock_path(db_path: Path) -> Path:
    """The lock file that belongs to a database file."""
    return db_path.with_name(db_path.name + ".lock")

log = logging.getLogger(__name__)


class StoreLock:
    """An exclusive, non-blocking lock on one database; a context manager."""

    def __init__(self, db_path: Path) -> None:
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise StoreBusy naming the holder's pid."""
        if self._fd is not None:
            return
        private_folder(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreBusy(
                f"the store {self.path.with_suffix('')} is in use by another process "
                f"(pid {holder}); stop the station (systemctl stop booking-station) first"
            ) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:  # a full disk: the lock holds without the pid written in it
            log.warning("store: could not write the pid into %s: %s", self.path, exc)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the descriptor drops the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
