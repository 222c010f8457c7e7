"""Read-only connections kept between reads: one per worker thread, closed with the store.

Opening a SQLite connection (the file, its WAL index, ``query_only``) costs more than most of
the station's reads: the technician page's polls, the drain's loads of a transaction, the
health figures. Each thread that reads keeps its own connection (SQLite connections are not
shared between threads here); every read runs in autocommit, so no read holds a snapshot once
it returns and the WAL can always be checkpointed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from appliance.store.database import connect_readonly

T = TypeVar("T")


@dataclass(eq=False)
class _Reader:
    conn: sqlite3.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class Readers:
    """Each calling thread's read-only connection to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[_Reader] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on this thread's connection (a fresh one, once the store is closed)."""
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            with self._lock:
                if self._closed:
                    return self._once(fn)
                reader = _Reader(connect_readonly(self.path, shared=True))
                self._all.append(reader)
            self._local.reader = reader
        with reader.lock:
            if reader.closed:
                return self._once(fn)
            try:
                return fn(reader.conn)
            finally:
                if reader.conn.in_transaction:  # a read that began one ends it here
                    reader.conn.rollback()

    def _once(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return read_once(self.path, fn)

    def close(self) -> None:
        """Close every kept connection, each once its read in progress is done."""
        with self._lock:
            self._closed = True
            readers, self._all = self._all, []
        for reader in readers:
            with reader.lock:
                reader.conn.close()
                reader.closed = True


def read_once(path: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` on a read-only connection opened for it and closed after."""
    conn = connect_readonly(path)
    try:
        return fn(conn)
    finally:
        conn.close()
