"""Console commands whose reader may leave early (``booking-station ... | head -c 10``)."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable


def exit_code(command: Callable[[], int]) -> int:
    """``command()``'s exit code once stdout is flushed, or 1 when stdout's reader left early.

    A short output sits in stdout's buffer until Python's exit, where a closed pipe would end
    in an "Exception ignored" traceback and exit code 120; flushing here brings it out. A
    closed stdout gives exit 1 without a traceback, and stdout is pointed at /dev/null so that
    Python's own flush at exit does not raise again. A broken pipe from anything else (a
    socket) is raised, so it still shows as the bug it is.
    """
    try:
        rc = command()
        sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return rc


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False
