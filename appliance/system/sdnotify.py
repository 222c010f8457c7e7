"""sd_notify over ``$NOTIFY_SOCKET`` and a watchdog fed only while every worker is alive.

READY=1 is sent once the station can really take a booking (store open, scanner ready, model
warm); WATCHDOG=1 is sent only while every registered heartbeat is fresh, so a wedged scanner
thread or SQLite writer gets the service restarted by systemd instead of hanging silently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    """Sends datagrams to systemd; does nothing when not run under systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        """True under systemd (Type=notify)."""
        return bool(self.address)

    def notify(self, **fields: str | int) -> None:
        """Send ``KEY=value`` lines, e.g. ``notify(READY=1, STATUS="ready")``."""
        message = "\n".join(f"{k}={v}" for k, v in fields.items())
        self.sent.append(message)
        if not self.address:
            return
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(addr)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)

    def status(self, text: str) -> None:
        """STATUS= line shown by ``systemctl status``."""
        self.notify(STATUS=text)


class Heartbeats:
    """Named workers' last sign of life (monotonic seconds)."""

    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self._sources: dict[str, Callable[[], float]] = {}

    def register(self, name: str, last_beat: Callable[[], float]) -> None:
        """Watch a worker through a function returning its last heartbeat."""
        self._sources[name] = last_beat

    def stale(self) -> list[str]:
        """Workers that have been silent too long."""
        now = time.monotonic()
        return [n for n, beat in self._sources.items() if now - beat() > self.stale_after_s]


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec, or None when the watchdog is off for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def feed_watchdog(notifier: Notifier, heartbeats: Heartbeats, interval_s: float) -> None:
    """Send WATCHDOG=1 every ``interval_s`` while no worker is stale."""
    while True:
        stale = heartbeats.stale()
        if stale:
            log.error("watchdog not fed: stale workers %s", ", ".join(stale))
            notifier.status(f"workers not responding: {', '.join(stale)}")
        else:
            notifier.notify(WATCHDOG=1)
        await asyncio.sleep(interval_s)
