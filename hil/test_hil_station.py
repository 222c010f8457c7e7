"""End to end on the hardware: the station service with the scanner under test.

    pytest hil --scanner serial:///dev/fpscanner --finger-on-platen
    pytest hil --scanner usb:05ba:000a --hot-plug -s        (a technician unplugs when told)

The station runs as systemd would run it (tests/system's runner: credentials from the
installer's first-boot step, a notify socket, a watchdog), with a Mosquitto on a free port.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from scanners import station_scanner_toml

from drivers.base import CaptureMode
from tests.conftest import free_port
from tests.kiosk_client import KioskClient
from tests.system.conftest import StationProcess, write_station_config

#: What each booking sequence asks of the scanner.
SEQUENCE_MODES = {
    "flats": {CaptureMode.FLAT_FOUR, CaptureMode.TWO_THUMBS},
    "tenprint": {CaptureMode.FLAT_FOUR, CaptureMode.TWO_THUMBS, CaptureMode.ROLLED},
}


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as res:
        return json.loads(res.read())


_officers: dict[int, KioskClient] = {}


def call(port: int, method: str, path: str, body: dict | None = None) -> dict:
    """The kiosk API as the signed-in officer (signed in on the first call)."""
    if port not in _officers:
        _officers[port] = KioskClient(port)
    return _officers[port].call(method, path, body)


def wait_scanner(port: int, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = health(port).get("scanner")
        if seen == state:
            return
        time.sleep(0.25)
    raise AssertionError(f"scanner never {state} within {timeout} s (last: {seen})")


@pytest.fixture
def station(tmp_path: Path, broker, scanner_spec: str, scanner_factory):
    """The station running with the scanner under test; yields (process, web port, modes)."""
    driver = scanner_factory()
    driver.open()
    try:
        modes = set(driver.capabilities().modes)
    finally:
        driver.close()
    web = free_port()
    sequence = "tenprint" if SEQUENCE_MODES["tenprint"] <= modes else "flats"
    config = write_station_config(tmp_path, broker.port, web)
    text = config.read_text().replace('[scanner]\ntype = "emulated"\nseed = 5\n',
                                      "[scanner]\n" + station_scanner_toml(scanner_spec))
    config.write_text(text.replace('sequence = "flats"', f'sequence = "{sequence}"'))
    process = StationProcess(tmp_path, config, web)
    process.start()
    try:
        process.notify.wait_for("READY=1", 300)
        yield process, web, modes, sequence
    finally:
        process.kill()


def test_the_station_is_ready_with_the_scanner(station) -> None:
    process, web, _modes, _sequence = station
    assert health(web) == {"ok": True, "scanner": "ready"}
    assert process.stop() == 0


def test_a_whole_booking_on_the_scanner(station, finger_on_platen: bool) -> None:
    """Every print of the booking sequence taken on the device, committed to the store."""
    _process, web, modes, sequence = station
    missing = SEQUENCE_MODES[sequence] - modes
    if missing:
        pytest.skip(f"the scanner takes {sorted(m.value for m in modes)}; a booking needs "
                    f"{sorted(m.value for m in SEQUENCE_MODES[sequence])} (a ten-print livescan)")
    if not finger_on_platen:
        pytest.skip("a booking needs fingers on the platen (--finger-on-platen)")
    call(web, "POST", "/api/booking", {"booking_number": "HIL-0001"})
    while call(web, "GET", "/api/kiosk")["current"] is not None:
        call(web, "POST", "/api/capture")
        call(web, "POST", "/api/accept", {"override_reason": "hardware test"})
    call(web, "POST", "/api/submit", {"confirm_sequence": True})
    bookings = call(web, "GET", "/api/kiosk")["bookings"]
    assert [b["booking_number"] for b in bookings] == ["HIL-0001"]


def test_hot_plug(station, request: pytest.FixtureRequest) -> None:
    """Unplug: the kiosk shows the scanner disconnected; replug: ready again, no restart."""
    if not request.config.getoption("--hot-plug"):
        pytest.skip("needs a technician at the station: --hot-plug, and run pytest with -s")
    process, web, _modes, _sequence = station
    pid = process.proc.pid
    print("\n>>> UNPLUG the scanner's cable now (you have 2 minutes)")
    wait_scanner(web, "disconnected", 120)
    print(">>> the station shows the scanner disconnected. PLUG it back in now (2 minutes)")
    wait_scanner(web, "ready", 120)
    print(">>> ready again")
    assert process.proc.pid == pid and process.proc.poll() is None
