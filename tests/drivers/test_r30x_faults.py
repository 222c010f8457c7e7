"""The serial driver against a misbehaving module and line: every failure typed and named."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import serial
from emulated_devices import emulator_url, serial_driver

from drivers.base import CaptureMode
from drivers.errors import (
    DeviceRefused,
    NoFinger,
    ProtocolError,
    ScannerDisconnected,
    ScannerError,
    ScannerTimeout,
)
from drivers.faults import FaultConfig
from drivers.r30x import R30xConfig
from drivers.r30x.emulator import R30xEmulator
from drivers.r30x.urlhandler.protocol_r30xemu import config_from_url

FLAT = CaptureMode.FLAT_SINGLE
AFTER_OPEN = 2  # VfyPwd and ReadSysPara go through cleanly; faults hit the capture


@pytest.fixture(params=["pty", "url"])
def port_with(
    request: pytest.FixtureRequest, pty_emulator: Callable[..., R30xEmulator]
) -> Callable[..., str]:
    """A port (pty path or URL) to an emulated module with the given faults."""

    def make(**faults: object) -> str:
        if request.param == "pty":
            return pty_emulator(FaultConfig(**faults)).port
        return emulator_url(faults=FaultConfig(**faults).model_dump_json())

    return make


def _named(error: ScannerError, driver: object, operation: str) -> None:
    assert error.device == driver.name  # type: ignore[attr-defined]
    assert error.operation == operation
    assert driver.name in str(error) and operation in str(error)  # type: ignore[attr-defined]


def test_unplug_mid_transfer_raises_disconnected_and_hands_on_nothing(
    port_with: Callable[..., str],
) -> None:
    driver = serial_driver(port_with(unplug_mid_transfer=True, armed_after=AFTER_OPEN))
    driver.open()
    with pytest.raises(ScannerDisconnected) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    with pytest.raises(ScannerDisconnected):  # and it stays gone instead of hanging
        driver.capture(FLAT)
    driver.close()


def test_unplug_during_the_handshake_fails_open(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(unplug_after_bytes=6))
    with pytest.raises(ScannerDisconnected) as caught:
        driver.open()
    _named(caught.value, driver, "verify password")


def test_corrupted_image_packets_raise_protocol_error(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(corrupt_probability=0.05, seed=4, armed_after=AFTER_OPEN))
    driver.open()
    with pytest.raises(ProtocolError) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    assert "checksum" in str(caught.value)
    assert driver.line_counters["checksum_errors"] > 0
    driver.close()


def test_dropped_image_packets_raise_protocol_error(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(drop_probability=0.02, seed=1, armed_after=AFTER_OPEN))
    driver.open()
    with pytest.raises(ProtocolError) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    assert "incomplete" in str(caught.value)
    driver.close()


def test_a_silent_module_times_out_naming_the_operation(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(timeout_probability=1.0, armed_after=AFTER_OPEN))
    driver.open()
    with pytest.raises(ScannerTimeout) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    assert driver.line_counters["timeouts"] == 1
    driver.close()


def test_wrong_password_is_refused(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(wrong_password=True))
    with pytest.raises(DeviceRefused) as caught:
        driver.open()
    assert not isinstance(caught.value, NoFinger)
    _named(caught.value, driver, "verify password")
    with pytest.raises(ScannerDisconnected):  # open failed, so nothing is left open
        driver.capture(FLAT)


def test_no_finger(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(no_finger=True))
    driver.open()
    assert driver.finger_present() is False
    with pytest.raises(NoFinger) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    driver.close()


def test_line_noise_before_packets_is_survived(port_with: Callable[..., str]) -> None:
    driver = serial_driver(port_with(line_noise_bytes=64, line_noise_rate=0.5, seed=9))
    driver.open()
    frame = driver.capture(FLAT)
    assert frame.image.std() > 10
    assert driver.line_counters["discarded_bytes"] > 0
    driver.close()


def test_the_image_is_the_modules_image_exactly(
    pty_emulator: Callable[..., R30xEmulator],
) -> None:
    emulator = pty_emulator()
    driver = serial_driver(emulator.port)
    driver.open()
    frame = driver.capture(FLAT)
    truth = emulator.platen.last_impression
    assert truth is not None
    assert np.array_equal(frame.image, (truth >> 4) * 17)
    assert frame.meta["upload_wire_bytes"] == 12 + 36864 + 288 * 11
    driver.close()


@pytest.mark.parametrize("packet_size", [32, 64, 256])
def test_every_packet_size_gives_the_whole_image(
    pty_emulator: Callable[..., R30xEmulator], packet_size: int
) -> None:
    driver = serial_driver(pty_emulator(packet_size=packet_size).port)
    driver.open()
    assert driver.capture(FLAT).image.shape == (288, 256)
    driver.close()


def test_a_wrong_baud_rate_times_out_instead_of_hanging(
    pty_emulator: Callable[..., R30xEmulator],
) -> None:
    driver = serial_driver(pty_emulator().port, baudrate=115200)
    with pytest.raises(ScannerTimeout) as caught:
        driver.open()
    _named(caught.value, driver, "verify password")


def test_a_finger_placed_later_is_seen(pty_emulator: Callable[..., R30xEmulator]) -> None:
    emulator = pty_emulator()
    emulator.platen.lift_finger()
    driver = serial_driver(emulator.port)
    driver.open()
    assert driver.finger_present() is False
    emulator.platen.place_finger()
    assert driver.finger_present() is True
    driver.close()


def test_replug_behind_a_by_id_link_and_reset(pty_emulator: Callable[..., R30xEmulator]) -> None:
    emulator = pty_emulator()
    driver = serial_driver(emulator.port)
    driver.open()
    emulator.unplug()
    with pytest.raises(ScannerDisconnected):
        driver.capture(FLAT)
    with pytest.raises(ScannerDisconnected):
        driver.reset()  # still unplugged: the reopen fails, typed
    emulator.replug()  # a new /dev/pts/N (the kernel may reuse the number); the link follows
    driver.reset()
    assert driver.capture(FLAT).image.shape == (288, 256)
    driver.close()


def test_a_missing_port_is_reported_as_disconnected(tmp_path: object) -> None:
    driver = serial_driver("/dev/serial/by-id/usb-nothing-here")
    with pytest.raises(ScannerDisconnected) as caught:
        driver.open()
    _named(caught.value, driver, "open")


def test_aura_indicator_drives_the_ring(pty_emulator: Callable[..., R30xEmulator]) -> None:
    from drivers.base import Indicator

    emulator = pty_emulator()
    driver = serial_driver(emulator.port)
    driver.open()
    driver.indicate(Indicator.LED_ERROR)
    assert emulator.module.led.colour == 0x01 and emulator.module.led.control == 0x02
    driver.indicate(Indicator.LED_OFF)
    assert emulator.module.led.on is False
    driver.close()


def test_url_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown r30xemu:// option 'colour'"):
        config_from_url("r30xemu://?colour=blue")
    config = config_from_url("r30xemu://?no_finger=1&packet_size=64&password=0x1234")
    assert config.faults.no_finger is True
    assert config.packet_size == 64 and config.password == 0x1234
    with pytest.raises(ValueError):
        serial.serial_for_url("r30xemu://?packet_size=100&finger_source=pattern")


def test_driver_config_rejects_unknown_keys_and_odd_baud_rates() -> None:
    with pytest.raises(ValueError):
        R30xConfig(port="/dev/ttyUSB0", parity="N")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        R30xConfig(baudrate=56000)
    assert R30xConfig(baudrate=115200).baudrate == 115200


def test_a_pulled_module_comes_back_when_told_to(
    pty_emulator: Callable[..., R30xEmulator],
) -> None:
    emulator = pty_emulator(FaultConfig(unplug_mid_transfer=True, armed_after=AFTER_OPEN,
                                        replug_after_s=0.05))
    driver = serial_driver(emulator.port)
    driver.open()
    with pytest.raises(ScannerDisconnected):
        driver.capture(FLAT)
    for _ in range(100):  # what the device worker does: reopen until the module is back
        try:
            driver.reset()
            break
        except ScannerDisconnected:
            time.sleep(0.01)
    assert driver.capture(FLAT).image.shape == (288, 256)
    driver.close()
