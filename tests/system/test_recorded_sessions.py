"""Recorded device sessions replayed to the real drivers (hil/record.py, hil/recording.py).

With no scanner at hand the sessions are recorded here from the emulators, through exactly the
code a technician runs on hardware: pyserial's spy:// on a tty for the serial module, the
recording pyusb backend for the U.are.U reader. Replaying gives the driver the same answers,
and a driver that sends something else is caught. Sessions recorded on real hardware go to
tests/fixtures/sessions/ and are replayed by the last test.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import REPO

sys.path.insert(0, str(REPO / "hil"))

from record import image_digest, record_serial, record_usb  # noqa: E402
from recording import (  # noqa: E402
    ReplayDevice,
    read_session,
    replay_backend,
    write_session,
)

from drivers.base import CaptureMode  # noqa: E402
from drivers.r30x import R30xConfig, R30xDriver  # noqa: E402
from drivers.r30x.emulator import R30xEmulator, R30xEmulatorConfig  # noqa: E402
from drivers.uareu import UareUConfig, UareUDriver  # noqa: E402
from drivers.uareu.device import UareUEmulatorConfig  # noqa: E402
from drivers.uareu.emulator import UareUBackend  # noqa: E402

SESSIONS = REPO / "tests" / "fixtures" / "sessions"


def capture_from_replayed_serial(events: list[dict], **options) -> Any:
    device = ReplayDevice(list(events))
    port = device.start()
    try:
        driver = R30xDriver(R30xConfig(port=port, **options))
        driver.open()
        try:
            driver.identity()
            driver.capabilities()
            return driver.capture(CaptureMode.FLAT_SINGLE).image
        finally:
            driver.close()
    finally:
        assert device.mismatch == "", device.mismatch
        device.stop()


def test_a_serial_session_replays_to_the_same_image(tmp_path: Path) -> None:
    emulator = R30xEmulator.on_pty(R30xEmulatorConfig(finger_source="pattern"))
    emulator.start()
    try:
        header, events = record_serial(emulator.port, 1, CaptureMode.FLAT_SINGLE)
    finally:
        emulator.stop()
    write_session(tmp_path / "r30x.jsonl", header, events)
    header, events = read_session(tmp_path / "r30x.jsonl")
    assert {e["dir"] for e in events} == {"tx", "rx"}
    image = capture_from_replayed_serial(events)
    assert image_digest(image) == header["device"]["image_sha256"][0]


def test_a_driver_that_sends_something_else_is_caught(tmp_path: Path) -> None:
    emulator = R30xEmulator.on_pty(R30xEmulatorConfig(finger_source="pattern"))
    emulator.start()
    try:
        _, events = record_serial(emulator.port, 1, CaptureMode.FLAT_SINGLE)
    finally:
        emulator.stop()
    first_tx = next(e for e in events if e["dir"] == "tx")
    first_tx["data"] = "ef01" + "00" * (len(first_tx["data"]) // 2 - 2)  # another command
    device = ReplayDevice(events)
    port = device.start()
    driver = R30xDriver(R30xConfig(port=port, timeout_s=0.5))
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error for no answer
        driver.open()
        driver.capture(CaptureMode.FLAT_SINGLE)
    driver.close()
    device.stop()
    assert device.mismatch.startswith("host sent")


def test_a_usb_session_replays_to_the_same_image(tmp_path: Path) -> None:
    # a U.are.U 4000: the 4000B/4500 descramble with a key answered to a challenge the driver
    # draws at random, so their sessions replay only up to that challenge
    emulated = UareUEmulatorConfig(finger_source="pattern", product_id=0x0007)
    header, events = record_usb(UareUBackend(emulated), 0x0007, 1, CaptureMode.FLAT_SINGLE)
    assert any(e["op"] == "bulk_read" and e.get("data") for e in events)
    write_session(tmp_path / "uareu.jsonl", header, events)
    header, events = read_session(tmp_path / "uareu.jsonl")
    backend = replay_backend(events, header["product_id"])
    driver = UareUDriver(UareUConfig(product_id=0x0007), backend=backend)
    driver.open()
    try:
        image = driver.capture(CaptureMode.FLAT_SINGLE).image
    finally:
        driver.close()
    assert backend.mismatch == ""
    assert image_digest(image) == header["device"]["image_sha256"][0]


@pytest.mark.parametrize("session", sorted(SESSIONS.glob("*.jsonl")) or [None],
                         ids=lambda p: p.name if p else "none")
def test_sessions_recorded_on_hardware_still_replay(session: Path | None) -> None:
    if session is None:
        pytest.skip("no session recorded on hardware yet (hil/record.py, see hil/README.md)")
    header, events = read_session(session)
    if header["session"] == "serial":
        image = capture_from_replayed_serial(events, **header.get("options", {}))
    else:
        backend = replay_backend(events, header["product_id"])
        driver = UareUDriver(UareUConfig(product_id=header["product_id"]), backend=backend)
        driver.open()
        image = driver.capture(CaptureMode(header["device"]["mode"])).image
        driver.close()
        assert backend.mismatch == ""
    assert image_digest(image) == header["device"]["image_sha256"][0]
