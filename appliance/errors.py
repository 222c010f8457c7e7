"""The station's exception tree: every error the appliance raises on purpose derives from here.

Each layer (config, store, sync, records, imaging, capture) has one branch, so callers can catch a
whole layer at once and library errors are wrapped with ``raise ... from exc``.
"""

from __future__ import annotations


class StationError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(StationError):
    """The configuration file is missing, unreadable or invalid."""


class SecretError(ConfigError):
    """A secret (database key, passphrase, password hash) cannot be read safely."""


class StoreError(StationError):
    """The encrypted store cannot do what was asked."""


class SyncError(StationError):
    """The link to the central service failed or a message was malformed."""


class RecordError(StationError):
    """A standard record (ANSI/NIST-ITL, ISO/ANSI template, WSQ) cannot be read or written."""


class ImagingError(StationError):
    """Image work (quality, minutiae, segmentation) failed."""


class CaptureError(StationError):
    """The capture workflow was asked for something that its state does not allow."""


class ScannerUnavailable(CaptureError):
    """The scanner failed while the workflow needed it (unplugged, timed out, refused)."""
