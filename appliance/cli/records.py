"""``booking-station validate FILE``: check an ANSI/NIST-ITL transaction from the command line.

The lead's CLI calls ``validate_command``; it prints one issue per line (never image or
personal data: issues name records and fields, and quote only short code values) and returns
the process exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from appliance.records.errors import ProfileError
from appliance.records.profile import PROFILES, get_profile
from appliance.records.validate import validate_transaction

EXIT_CLEAN, EXIT_ISSUES, EXIT_UNREADABLE = 0, 1, 2


def validate_command(path: Path, profile_name: str | None = None, out: TextIO = sys.stdout) -> int:
    """Validate the transaction in ``path``: 0 when clean, 1 on issues, 2 when unreadable.

    ``profile_name`` is one of ``PROFILES`` (e.g. ``"ebts-car"``); without it only the
    ANSI/NIST-ITL rules are checked. "Unreadable" means the file cannot be opened, or does not
    start like an ANSI/NIST-ITL transaction, or the profile name is unknown.
    """
    try:
        profile = get_profile(profile_name) if profile_name is not None else None
    except ProfileError as exc:
        print(f"{path}: {exc}", file=out)
        return EXIT_UNREADABLE
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
        return EXIT_UNREADABLE
    if not data.startswith(b"1.001:"):
        print(f"{path}: not an ANSI/NIST-ITL transaction (it does not start with field 1.001)",
              file=out)
        return EXIT_UNREADABLE
    issues = validate_transaction(data, profile)
    for issue in issues:
        print(f"{path}: {issue}", file=out)
    if not issues:
        checked = f" against the {profile.name} profile" if profile else ""
        print(f"{path}: valid{checked}", file=out)
    return EXIT_ISSUES if issues else EXIT_CLEAN


__all__ = ["EXIT_CLEAN", "EXIT_ISSUES", "EXIT_UNREADABLE", "PROFILES", "validate_command"]
