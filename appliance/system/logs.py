"""Logging to stdout for journald: no timestamps under systemd, levels from config."""

from __future__ import annotations

import logging
import os
import sys

from appliance.system.config import LoggingSection


def setup_logging(section: LoggingSection) -> None:
    """Configure the root logger once; journald adds time and unit itself."""
    under_systemd = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_systemd:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(section.level)
    for name, level in section.levels.items():
        logging.getLogger(name).setLevel(level)
    # third-party chatter stays at WARNING unless asked for
    for noisy in ("uvicorn.access", "paho"):
        if noisy not in section.levels:
            logging.getLogger(noisy).setLevel(logging.WARNING)


class RecentLogs(logging.Handler):
    """The last log lines, kept in memory for the technician's diagnostics bundle.

    The station logs no subject data (``Subject`` hides itself in reprs); the bundle still
    carries only what this handler formatted: level, logger, message, no tracebacks' locals.
    """

    def __init__(self, keep: int = 1000) -> None:
        super().__init__(logging.INFO)
        from collections import deque

        self._lines: deque[str] = deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one formatted line (tracebacks reduced to their last line)."""
        try:
            line = self.format(record).splitlines()
            self._lines.append(line[0] + (f" [{line[-1]}]" if len(line) > 1 else ""))
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        return list(self._lines)
