"""What the web pages serve: the station's services, handed over by the composition root.

The web layer reads and drives these and nothing else: no driver, no composition root. A
service that could not start (the store on a full or corrupt disk) is ``None`` and the pages
say why through ``health``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.capture.booking import BookingService
from appliance.capture.diagnostics import ScannerTools
from appliance.capture.preview import PreviewLoop
from appliance.store.store import Store
from appliance.sync.service import SyncService
from appliance.system.config import StationSection
from appliance.system.events import Events
from appliance.system.health import HealthService
from appliance.web.config import WebSection


class Configuration(Protocol):
    """The running configuration as the technician page sees and changes it (plain data)."""

    def running(self) -> dict[str, Any]:
        """The running configuration, secrets redacted."""
        ...

    def propose(self, change: str) -> Any:
        """A checked change (``.as_dict()``: problems, diff, restarts)."""
        ...

    async def apply(self, change: str, actor: str) -> dict[str, Any]:
        """Apply a change, rolling back by itself if the station is not healthy again."""
        ...


@dataclass(slots=True)
class Services:
    """Everything the pages need, built and started by the composition root."""

    station: StationSection
    web: WebSection
    health: HealthService
    events: Events
    booking: BookingService | None = None
    preview: Callable[[], PreviewLoop] | None = None
    store: Store | None = None
    sync: SyncService | None = None
    problem: Callable[[], str | None] = lambda: None
    #: What the officer should know while working (disk nearly full, a store short of space):
    #: shown on the kiosk as a standing banner, nothing refused by it alone.
    notices: Callable[[], list[str]] = field(default=list)
    diagnostics: Callable[[], dict[str, Any]] = field(default=dict)
    scanner: Callable[[], dict[str, Any]] = field(default=dict)
    configuration: Configuration | None = None
    recent_logs: Callable[[], list[str]] = field(default=list)
    scanner_tools: ScannerTools | None = None
