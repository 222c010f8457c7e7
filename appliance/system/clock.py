"""Is the system clock synchronised? Bookings made with an untrusted clock are marked.

Asks the kernel through ``adjtimex(2)`` (read-only, modes = 0): it returns TIME_ERROR (5) while
the clock is unsynchronised, whichever NTP daemon runs. Where that call is unavailable the
answer is "untrusted", never a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging

log = logging.getLogger(__name__)
TIME_ERROR = 5


class ClockTrust(enum.StrEnum):
    """What the station can say about its clock."""

    SYNCHRONISED = "synchronised"
    UNSYNCHRONISED = "unsynchronised"
    UNKNOWN = "unknown"


def kernel_clock_state() -> ClockTrust:
    """The kernel's view of clock synchronisation."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError) as exc:
        log.warning("clock: cannot ask the kernel about synchronisation: %s", exc)
        return ClockTrust.UNKNOWN
    if state < 0:
        return ClockTrust.UNKNOWN
    return ClockTrust.UNSYNCHRONISED if state == TIME_ERROR else ClockTrust.SYNCHRONISED
