"""The station's identity, logging and service-lifecycle sections of the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from appliance.strict import Strict


class StationSection(Strict):
    """Who this station is."""

    station_id: str = Field(
        "station-demo",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Unique station id; used in MQTT topics and transaction control numbers.",
    )
    ori: str = Field(
        "XX0000000",
        min_length=9,
        max_length=9,
        description="Originating agency identifier (ANSI/NIST-ITL 1.008 ORI).",
    )
    agency_name: str = Field("Demo Police Department", description="Agency name shown on pages.")
    data_dir: Path = Field(
        Path("/var/lib/booking-station"), description="Directory for the database and backups."
    )


class LoggingSection(Strict):
    """Logging to stdout (journald adds timestamps under systemd)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Root level.")
    levels: dict[str, Literal["DEBUG", "INFO", "WARNING", "ERROR"]] = Field(
        default_factory=dict, description="Per-logger levels, e.g. {'appliance.sync' = 'DEBUG'}."
    )


class SystemSection(Strict):
    """Service lifecycle."""

    store_retry_s: float = Field(
        5.0, gt=0, le=3600,
        description="While a full disk keeps the store shut, try to open it this often (s).",
    )
    stop_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Bound on a clean shutdown (seconds)."
    )
    heartbeat_stale_s: float = Field(
        30.0, ge=2, le=3600,
        description="A worker silent this long stops the systemd watchdog feed (at least 2 s:"
        " an idle owner thread beats once a second, and a bound that tight would starve the"
        " watchdog of a healthy but briefly descheduled thread)."
    )
    malloc_mmap_threshold_kb: int = Field(
        128,
        ge=0,
        le=32768,
        description="glibc: arrays at least this large are mmapped and given back on free "
        "(keeps the resident size near the working set); 0 leaves the allocator's default.",
    )
