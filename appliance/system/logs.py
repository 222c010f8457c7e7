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
