"""The one SQLite writer: a thread that owns the read-write connection.

Coroutines hand it functions and await the result; nothing blocking runs on the event loop and
no two writers ever race for the lock (docs/architecture.md, one SQLite writer).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from appliance.handoff import settle
from appliance.store.database import connect
from appliance.store.errors import StoreClosed, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

_STOP = object()


class WriterThread:
    """Runs ``fn(connection)`` jobs one at a time on its own connection."""

    def __init__(self, path: Path, on_open: Callable[[sqlite3.Connection], None]) -> None:
        self._path = path
        self._on_open = on_open
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._started = threading.Event()
        self._open_error: BaseException | None = None
        self.heartbeat = time.monotonic()

    def start(self) -> None:
        """Open the connection in the thread; raises what opening raised."""
        self._thread.start()
        self._started.wait()
        if self._open_error is not None:
            raise self._open_error

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued jobs, close the connection."""
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a job and await its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def finish(result: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, future, result, error)

        self._submit(fn, finish)
        return await future

    def _submit(self, fn: Callable[[sqlite3.Connection], Any], finish: Callable[..., None]) -> None:
        if not self._thread.is_alive():
            raise StoreClosed("the store writer is not running")
        self._jobs.put((fn, finish))

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(self._path)
            self._on_open(conn)
        except BaseException as exc:  # reported to start()
            if conn is not None:
                conn.close()
            self._open_error = translate(exc)
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=1.0)
                except queue.Empty:
                    self.heartbeat = time.monotonic()
                    continue
                if job is _STOP:
                    break
                fn, finish = job
                try:
                    result = fn(conn)
                except BaseException as exc:  # handed to the awaiting caller
                    _rollback(conn)
                    finish(None, translate(exc))
                else:
                    finish(result, None)
                self.heartbeat = time.monotonic()
        finally:
            conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo a job's open transaction; SQLite may already have rolled back (disk full)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("store: rollback after a failed write failed", exc_info=True)
