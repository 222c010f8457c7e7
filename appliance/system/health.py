"""The station's health at a glance, for telemetry, the technician page and the kiosk banners.

The health service knows no store, scanner or link: the composition root hands it a callable
per source, so that every surface reads the same figures computed the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from appliance.phrase import Phrase


class StoreFigures(Protocol):
    """What the store reports about itself (``appliance.store.store.StoreHealth``)."""

    queue_depth: int
    oldest_unsent_at: str | None
    audit_entries: int
    audit_head: str
    disk_free_mb: int
    disk_total_mb: int
    bookings_today: int
    nfiq2_median_today: float | None


@dataclass(slots=True)
class Health:
    """The periodic health message."""

    station_id: str
    queue_depth: int
    oldest_unsent_age_s: float | None
    disk_free_mb: int
    scanner_state: str
    audit_head: str
    audit_entries: int
    clock: str
    link_connects: int
    cpu_temperature_c: float | None = None
    alerts: list[str] = field(default_factory=list)
    uploads_paused: bool = False
    throttle_per_s: float = 0.0
    clock_problem: str = ""
    acks_refused: int = 0
    session_taken_over: int = 0
    disk_total_mb: int = 0
    bookings_today: int = 0  # committed since midnight UTC
    nfiq2_median_today: float | None = None  # over today's impressions with a score
    delivered: int = 0  # transactions central stored since the service started
    drain_per_s: float = 0.0  # deliveries per second since the previous health message
    command_signature_failures: int = 0
    receipt_signature_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Every field by name."""
        return {f: getattr(self, f) for f in self.__slots__}

    def encode(self) -> bytes:
        """JSON bytes with the time of the reading."""
        body = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **self.as_dict()}
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def age_seconds(iso: str | None) -> float | None:
    """Seconds since an ISO timestamp (None stays None)."""
    if iso is None:
        return None
    return max(0.0, time.time() - datetime.fromisoformat(iso).timestamp())


def cpu_temperature_c() -> float | None:
    """The SoC temperature where the kernel exposes it (Raspberry Pi, most x86 boards)."""
    try:
        with open("/sys/class/thermal/thermal_zone0/temp") as fh:
            return round(int(fh.read().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None


@dataclass(slots=True)
class HealthSources:
    """Where each figure comes from; every callable is quick, ``store`` may block briefly."""

    store: Callable[[], StoreFigures | None]
    scanner_state: Callable[[], str]
    clock: Callable[[], str]
    link_connects: Callable[[], int]
    problems: Callable[[], list[str]]


def below_floor(free_mb: int, floor_mb: int) -> Phrase | None:
    """What a data disk under the store's free-space floor means, in one sentence."""
    if free_mb >= floor_mb:
        return None
    return Phrase(f"disk full: {floor_mb - free_mb} MB needed (floor {floor_mb} MB); new "
                  "bookings refused, sending to central goes on", "disk_below_floor",
                  need=floor_mb - free_mb, floor=floor_mb)


class HealthService:
    """Reads every source and says what is wrong, in one sentence per problem."""

    def __init__(self, station_id: str, min_free_mb: int, sources: HealthSources) -> None:
        self.station_id = station_id
        self.min_free_mb = min_free_mb
        self.sources = sources

    def read(self) -> Health:
        """The station's health now (blocks on a store read: call from a worker thread)."""
        figures = self.sources.store()
        alerts = list(self.sources.problems())
        below = below_floor(figures.disk_free_mb, self.min_free_mb) if figures else None
        if below:
            alerts.append(below)
        return Health(
            station_id=self.station_id,
            queue_depth=figures.queue_depth if figures else 0,
            oldest_unsent_age_s=age_seconds(figures.oldest_unsent_at) if figures else None,
            disk_free_mb=figures.disk_free_mb if figures else 0,
            scanner_state=self.sources.scanner_state(),
            audit_head=figures.audit_head if figures else "",
            audit_entries=figures.audit_entries if figures else 0,
            clock=self.sources.clock(),
            link_connects=self.sources.link_connects(),
            cpu_temperature_c=cpu_temperature_c(),
            alerts=alerts,
            disk_total_mb=figures.disk_total_mb if figures else 0,
            bookings_today=figures.bookings_today if figures else 0,
            nfiq2_median_today=figures.nfiq2_median_today if figures else None,
        )
