"""The minutiae runtime's errors, on the imaging branch of the station's tree.

A bad print is never an error here (it gives few or no minutiae); these are faults of the
installation that a technician must fix: a missing or altered model file, a broken manifest.
"""

from __future__ import annotations

from pathlib import Path

from appliance.errors import ImagingError


class MinutiaeModelError(ImagingError):
    """The minutiae model cannot be loaded or run."""


class ModelIntegrityError(MinutiaeModelError):
    """The model file is missing or differs from its manifest (digest, inputs, outputs).

    ``path`` is the file at fault and ``expected_sha256`` the digest the manifest promises
    (None when the manifest itself is at fault).
    """

    def __init__(self, message: str, path: Path, expected_sha256: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.expected_sha256 = expected_sha256
