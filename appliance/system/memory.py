"""The C allocator's settings for a long-running, numpy-heavy, multi-threaded station.

glibc serves a freed block of 128 KiB or more back to the kernel only while it was mmapped;
after each such free it raises its mmap threshold (up to 32 MiB), so the next image-sized
arrays (a 1600x1500 slap is 2.4 MB as uint8, 19 MB as float64) come from the heap arenas of
whichever thread made them and stay resident after they are freed. Fixing the threshold keeps
large arrays mmapped, so they are returned on free, at the price of fresh page faults for
each new array. Measured with three ten-print bookings on the emulated livescan
(``benchmarks/station_bench.py --bookings 3`` against the same with ``--mmap-threshold-kb 0``,
one after the other on an otherwise idle machine): peak resident memory 377 MB against
629 MB, and 0.88-1.18 s against 0.78-1.04 s from the last capture to the committed booking.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

#: mallopt parameter numbers from glibc's malloc.h.
M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(kib: int) -> bool:
    """Fix glibc's mmap threshold at ``kib`` KiB (0: leave the allocator alone).

    Returns True when the setting took; False on a C library without ``mallopt`` (musl, macOS),
    where nothing changes and the station runs as before.
    """
    if kib <= 0:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, kib * 1024))
    if not ok:
        log.warning("memory: mallopt refused an mmap threshold of %d KiB", kib)
    return ok
