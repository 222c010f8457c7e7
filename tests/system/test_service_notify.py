"""The station under the notify socket a test holds, as systemd would run it from the unit:
READY only after the warm-up, a watchdog that stops when a worker wedges, STOPPING on SIGTERM,
and a whole booking with no memory both writable and executable (MemoryDenyWriteExecute)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.kiosk_client import KioskClient
from tests.system.conftest import StationProcess, mdwe_supported, write_station_config


def test_ready_after_warm_up_a_booking_under_mdwe_and_stopping(
        tmp_path: Path, mosquitto, station_process: list[StationProcess]) -> None:
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    web = free_port()
    station = StationProcess(tmp_path, write_station_config(tmp_path, mosquitto.port, web), web,
                             mdwe=True)
    station_process.append(station)
    station.start()
    ready_at = station.notify.wait_for("READY=1", 180)
    # the warm-up (NFIQ 2 loaded, the minutiae model run once) logged before READY was sent
    assert any("NFIQ 2 backend" in line for line in station.output), station.output
    assert station.health() == 200
    station.notify.wait_for("WATCHDOG=1", 30, after=ready_at)

    kiosk = KioskClient(web)
    kiosk.post("/api/booking", {"booking_number": "BK-MDWE"})
    for _ in range(3):
        kiosk.post("/api/capture")
        kiosk.post("/api/accept")
    kiosk.post("/api/submit")
    assert station.stop() == 0
    station.notify.wait_for("STOPPING=1", 1)
    db = sqlite3.connect(tmp_path / "station" / "station.db")
    (bookings,) = db.execute("SELECT COUNT(*) FROM bookings").fetchone()
    (impressions,) = db.execute("SELECT COUNT(*) FROM impressions").fetchone()
    db.close()
    assert (bookings, impressions) == (1, 3)
    assert not any("Traceback" in line for line in station.output), "".join(station.output)


def test_a_wedged_scanner_stops_the_watchdog(tmp_path: Path, mosquitto,
                                             station_process: list[StationProcess]) -> None:
    """A capture that holds the scanner's owner thread longer than heartbeat_stale_s stops
    WATCHDOG=1 (systemd's WatchdogSec= would restart a station hung like this), and the feed
    comes back once the thread answers again."""
    web = free_port()
    # the emulator's slowest capture (5 s) against the tightest staleness bound (2 s): a wedge
    # of ~3 s. An idle owner thread beats once a second, so load cannot make it look stale.
    config = write_station_config(tmp_path, mosquitto.port, web,
                                  scanner="capture_latency_s = 5\n",
                                  system="heartbeat_stale_s = 2\n")
    station = StationProcess(tmp_path, config, web, watchdog_usec=500_000)
    station_process.append(station)
    station.start()
    ready_at = station.notify.wait_for("READY=1", 180)
    station.notify.wait_for("WATCHDOG=1", 30, after=ready_at)
    kiosk = KioskClient(web)
    kiosk.post("/api/booking", {"booking_number": "BK-WEDGE"})
    capture = threading.Thread(target=kiosk.post, args=("/api/capture",), daemon=True)
    posted_at = time.monotonic()
    capture.start()
    stale_at = station.notify.wait_for("STATUS=workers not responding: scanner", 120,
                                       after=posted_at)
    capture.join(180)
    assert not capture.is_alive()
    fed_again = station.notify.wait_for("WATCHDOG=1", 60, after=stale_at)
    missed = [at for at, line in station.notify.lines()
              if stale_at <= at < fed_again and line.startswith("STATUS=workers not responding")]
    fed = [at for at, line in station.notify.lines()
           if line == "WATCHDOG=1" and stale_at <= at < fed_again]
    assert len(missed) >= 2 and fed == []
