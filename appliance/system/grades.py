"""Health at a glance: each item of the station green, amber or red, with the reason in words.

Pure: a :class:`~appliance.system.health.Health` reading and a few facts the composition root
knows (link, models, versions) in, a list of graded items out. The thresholds are the ones a
technician acts on: amber means "look at it today", red means "bookings are at risk now".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from appliance.system.health import Health

#: Unsent bookings: amber above the first, red above the second.
QUEUE_AMBER, QUEUE_RED = 20, 200
#: Age of the oldest unsent booking (seconds).
AGE_AMBER_S, AGE_RED_S = 3600.0, 24 * 3600.0
#: SoC temperature (degrees Celsius); a Raspberry Pi throttles at 80.
TEMP_AMBER_C, TEMP_RED_C = 70.0, 80.0


class Grade(enum.StrEnum):
    """How an item stands."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the health table."""

    key: str
    label: str
    status: Grade
    value: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (by hand: ``asdict`` deep-copies, on every page refresh)."""
        return {"key": self.key, "label": self.label, "status": self.status,
                "value": self.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Facts:
    """What the health reading does not carry."""

    link_connected: bool
    link_configured: bool
    models: dict[str, str]
    software_version: str
    min_free_mb: int


def grade(health: Health, facts: Facts) -> list[Item]:
    """Every item of the station, graded."""
    return [
        _scanner(health.scanner_state),
        _model(facts.models),
        _nfiq2(facts.models),
        _link(facts),
        _queue(health.queue_depth),
        _oldest(health.oldest_unsent_age_s),
        _disk(health.disk_free_mb, facts.min_free_mb),
        _temperature(health.cpu_temperature_c),
        _clock(health.clock, health.clock_problem),
        Item("software", "Software version", Grade.GREEN, facts.software_version, ""),
        Item("alerts", "Alerts", Grade.RED if health.alerts else Grade.GREEN,
             str(len(health.alerts)), "; ".join(health.alerts)),
    ]


def worst(items: list[Item]) -> Grade:
    """The station's overall grade: its worst item."""
    order = [Grade.GREEN, Grade.AMBER, Grade.RED]
    return max((i.status for i in items), key=order.index, default=Grade.GREEN)


def _scanner(state: str) -> Item:
    if state in ("ready", "busy"):
        return Item("scanner", "Scanner", Grade.GREEN, state, "")
    if state == "starting":
        return Item("scanner", "Scanner", Grade.AMBER, state, "the scanner is starting")
    return Item("scanner", "Scanner", Grade.RED, state,
                "no scanner: bookings cannot be taken (check the cable and power)")


def _model(models: dict[str, str]) -> Item:
    version = models.get("minutiae")
    if version:
        return Item("model", "Minutiae model", Grade.GREEN, version, "")
    return Item("model", "Minutiae model", Grade.AMBER, "none",
                "no minutiae model loaded: transactions go without templates")


def _nfiq2(models: dict[str, str]) -> Item:
    backend = models.get("nfiq2")
    if backend:
        return Item("nfiq2", "NFIQ 2 backend", Grade.GREEN, backend, "")
    return Item("nfiq2", "NFIQ 2 backend", Grade.RED, "none",
                "NFIQ 2 did not load: print quality cannot be checked")


def _link(facts: Facts) -> Item:
    if not facts.link_configured:
        return Item("link", "Central link", Grade.RED, "not running",
                    "sync is not running: bookings stay on the station")
    if facts.link_connected:
        return Item("link", "Central link", Grade.GREEN, "connected", "")
    return Item("link", "Central link", Grade.AMBER, "disconnected",
                "not connected to central: bookings wait in the outbox")


def _queue(depth: int) -> Item:
    if depth > QUEUE_RED:
        return Item("queue", "Unsent bookings", Grade.RED, str(depth),
                    f"more than {QUEUE_RED} bookings wait to be sent")
    if depth > QUEUE_AMBER:
        return Item("queue", "Unsent bookings", Grade.AMBER, str(depth),
                    f"more than {QUEUE_AMBER} bookings wait to be sent")
    return Item("queue", "Unsent bookings", Grade.GREEN, str(depth), "")


def _oldest(age_s: float | None) -> Item:
    if age_s is None:
        return Item("oldest", "Oldest unsent", Grade.GREEN, "none", "")
    value = _duration(age_s)
    if age_s > AGE_RED_S:
        return Item("oldest", "Oldest unsent", Grade.RED, value,
                    "a booking has waited more than a day to reach central")
    if age_s > AGE_AMBER_S:
        return Item("oldest", "Oldest unsent", Grade.AMBER, value,
                    "a booking has waited more than an hour to reach central")
    return Item("oldest", "Oldest unsent", Grade.GREEN, value, "")


def _disk(free_mb: int, min_free_mb: int) -> Item:
    value = f"{free_mb} MB free"
    if free_mb < min_free_mb:
        return Item("disk", "Disk", Grade.RED, value,
                    f"under {min_free_mb} MB free: new bookings are refused")
    if free_mb < 4 * min_free_mb:
        return Item("disk", "Disk", Grade.AMBER, value,
                    f"under {4 * min_free_mb} MB free: bookings will soon be refused")
    return Item("disk", "Disk", Grade.GREEN, value, "")


def _temperature(celsius: float | None) -> Item:
    if celsius is None:
        return Item("temperature", "CPU temperature", Grade.GREEN, "not measured",
                    "the board has no temperature sensor the kernel exposes")
    value = f"{celsius:.1f} °C"
    if celsius >= TEMP_RED_C:
        return Item("temperature", "CPU temperature", Grade.RED, value,
                    "the CPU is throttling: check the fan and the air flow")
    if celsius >= TEMP_AMBER_C:
        return Item("temperature", "CPU temperature", Grade.AMBER, value,
                    "the CPU runs hot")
    return Item("temperature", "CPU temperature", Grade.GREEN, value, "")


def _clock(clock: str, problem: str) -> Item:
    if clock == "synchronised":
        return Item("clock", "Clock", Grade.GREEN, clock, "")
    return Item("clock", "Clock", Grade.AMBER, clock,
                problem or "the clock is not synchronised: bookings are marked untrusted")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
