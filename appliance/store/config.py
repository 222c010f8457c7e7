"""The store's section of the configuration: where the database lives and how long data stays."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from appliance.strict import Strict


class StoreSection(Strict):
    """The encrypted SQLite store."""

    database: str = Field(
        "station.db", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$",
        description="Database file name in data_dir (a plain name, no folders).",
    )
    key_credential: str = Field(
        "booking-station-db-key",
        description="Name of the 32-byte store key in $CREDENTIALS_DIRECTORY (systemd credential).",
    )
    key_file: Path | None = Field(
        None,
        description="Root-only key file used when no systemd credential is present.",
    )
    min_free_mb: int = Field(
        512, ge=0, le=1_000_000,
        description="Refuse new bookings when the data disk has less free space (MiB)."
    )
    reserve_mb: int = Field(
        4, ge=0, le=10_000,
        description="Space held back in a file beside the database and given back when a full "
        "disk would stop the store from opening, so the station can still drain its outbox."
    )
    keep_lossless_prints: bool = Field(
        False,
        description="Keep each print's lossless image after its booking is committed, until the "
        "purge. Off, a committed booking holds its prints only as the transaction's WSQ images "
        "(the lossless copies serve the open booking and the build of its transaction).",
    )
    biometric_grace_hours: float = Field(
        24.0, ge=0, le=24 * 3650,
        description="Keep images/templates this long after central confirms storage."
    )
    metadata_retention_days: int = Field(
        365, ge=1, le=36500, description="Keep booking metadata and audit entries this many days."
    )
    backup_interval_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="Take a consistent backup of the store this often."
    )
    backup_keep: int = Field(7, ge=1, le=1000, description="Backups kept in data_dir/backups.")
