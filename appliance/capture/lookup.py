"""The subject's details from the agency's booking system: one JSON file per booking number.

The booking system drops ``<booking number>.json`` (an object of Type-2 mnemonics to text) into
the configured folder; the kiosk fills its form from it so the officer does not retype. Only
booking numbers that are plain file names are looked up, so a number can never name another
path; a file that is missing, too big or not such an object finds nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: Booking numbers that may name a file in the folder.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: Largest look-up file read.
LOOKUP_MAX_BYTES = 16 * 1024


def lookup_subject(folder: Path, booking_number: str) -> dict[str, str] | None:
    """The form values the booking system left for ``booking_number``, or None."""
    if not FILE_NAME.fullmatch(booking_number):
        return None
    path = folder / f"{booking_number}.json"
    try:
        if path.stat().st_size > LOOKUP_MAX_BYTES:
            return None
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    return {str(k).upper()[:8]: str(v)[:100] for k, v in found.items()
            if isinstance(v, str | int)}
