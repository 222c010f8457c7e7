"""What the watch makes of telemetry, and the colour and reason operators see for it."""

from __future__ import annotations

import json

import pytest

from appliance.sync import telemetry
from appliance.sync.protocol import MalformedMessage
from central.fleet import FleetWatch, assess


def health(**figures) -> bytes:
    body = {"station_id": "st-1", "queue_depth": 0, "oldest_unsent_age_s": None,
            "disk_free_mb": 5000, "disk_total_mb": 10000, "scanner_state": "ready",
            "clock": "synchronised", "clock_problem": ""}
    body.update(figures)
    return json.dumps(body).encode()


@pytest.fixture
def watch() -> FleetWatch:
    return FleetWatch(max_stations=3)  # never connected: record() is fed directly


def colour(watch: FleetWatch, now: float = 1000.0) -> tuple[str, list[str]]:
    view = watch.station("st-1")
    assert view is not None
    return assess(view, now, stale_after_s=120)


def test_well_station_is_green_and_each_problem_names_itself(watch) -> None:
    watch.record("bst-telemetry/st-1/status", telemetry.birth(
        "st-1", capabilities={}, scanner={}, config_hash="x"), now=1000)
    assert colour(watch) == ("grey", ["no health message yet"])
    watch.record("bst-telemetry/st-1/health", health(), now=1000)
    assert colour(watch) == ("green", [])
    watch.record("bst-telemetry/st-1/health", health(
        oldest_unsent_age_s=5 * 3600, disk_free_mb=500, clock="unsynchronised",
        command_signature_failures=1, uploads_paused=True), now=1000)
    assert colour(watch) == ("amber", ["clock untrusted", "oldest unsent booking 5 h old",
                                       "disk 5 % free", "1 signature failures",
                                       "uploads paused"])
    watch.record("bst-telemetry/st-1/health", health(scanner_state="disconnected"), now=1000)
    assert colour(watch) == ("red", ["scanner disconnected"])
    assert colour(watch, now=1000 + 600) == ("red", ["no telemetry for 10 min",
                                                     "scanner disconnected"])
    view = watch.station("st-1")
    assert [state for _, state in view.scanner_events] == ["ready", "disconnected"]


def test_will_is_red_and_a_goodbye_is_grey(watch) -> None:
    watch.record("bst-telemetry/st-1/status", telemetry.will("st-1"), now=1000)
    assert colour(watch) == ("red", ["offline: the broker published its will"])
    watch.record("bst-telemetry/st-1/status", telemetry.offline_clean("st-1"), now=1000)
    assert colour(watch) == ("grey", ["stopped on purpose"])


@pytest.mark.parametrize(("topic", "payload"), [
    ("bst/st-1/health", b"{}"),  # the bookings tree is not telemetry
    ("bst-telemetry/st 1/health", b"{}"),
    ("bst-telemetry/st-1/tx", b"{}"),
    ("bst-telemetry/st-1/health", b"[]"),
    ("bst-telemetry/st-1/health", b"\xff"),
    ("bst-telemetry/st-1/status", b'{"state": "maybe"}'),
    ("bst-telemetry/st-1/health", b"{" + b" " * 70_000 + b"}"),
])
def test_malformed_telemetry_is_refused(watch, topic: str, payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        watch.record(topic, payload)


def test_the_watch_keeps_a_bounded_number_of_stations(watch) -> None:
    for n in range(3):
        watch.record(f"bst-telemetry/st-{n}/health", health())
    with pytest.raises(MalformedMessage):
        watch.record("bst-telemetry/st-9/health", health())
    assert len(watch.snapshot()) == 3
