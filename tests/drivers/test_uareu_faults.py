"""The USB driver against the emulated reader's faults: typed errors, never a partial image."""

from __future__ import annotations

import time

import numpy as np
import pytest
import usb.core
import usb.util
from emulated_devices import usb_device, usb_driver

from drivers.base import CaptureMode
from drivers.errors import (
    NoFinger,
    ProtocolError,
    ScannerDisconnected,
    ScannerError,
    ScannerTimeout,
)
from drivers.faults import FaultConfig
from drivers.uareu import UareUBackend, UareUConfig, UareUEmulatorConfig
from drivers.uareu.protocol import VENDOR_ID

FLAT = CaptureMode.FLAT_SINGLE


def _named(error: ScannerError, driver: object, operation: str) -> None:
    assert error.device == driver.name  # type: ignore[attr-defined]
    assert error.operation == operation


@pytest.mark.parametrize(
    ("product", "scrambles"), [(0x000A, False), (0x0007, False), (0x0007, True)]
)
def test_the_image_is_what_the_sensor_saw(product: int, scrambles: bool) -> None:
    device = usb_device(product_id=product, scrambles=scrambles)
    driver = usb_driver(device)
    driver.open()
    frame = driver.capture(FLAT)
    assert device.last_image is not None
    differing = np.count_nonzero(frame.image != device.last_image)
    assert differing <= 3  # only the last pixel of each scrambled block is lost
    assert frame.meta["scrambled"] is (product == 0x000A or scrambles)
    driver.close()


def test_the_device_is_found_through_usb_core_find() -> None:
    backend = UareUBackend(usb_device())
    device = usb.core.find(idVendor=VENDOR_ID, backend=backend)
    assert device is not None and device.idProduct == 0x000A
    interface = device.get_active_configuration()[(0, 0)]
    assert [ep.bEndpointAddress for ep in interface] == [0x81, 0x82]
    assert usb.util.get_string(device, device.iManufacturer) == "DigitalPersona, Inc."


def test_unplug_mid_transfer_raises_disconnected_and_replug_recovers() -> None:
    device = usb_device(faults=FaultConfig(unplug_mid_transfer=True))
    driver = usb_driver(device)
    driver.open()
    with pytest.raises(ScannerDisconnected) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    assert device.frames == 0  # no frame was handed out
    with pytest.raises(ScannerDisconnected):
        driver.reset()  # the reader is not on the bus any more
    device.replug()
    driver.reset()
    assert driver.capture(FLAT).image.shape == (290, 384)
    driver.close()


def test_unplug_after_bytes_cuts_the_first_frame() -> None:
    device = usb_device(faults=FaultConfig(unplug_after_bytes=1000))
    driver = usb_driver(device)
    driver.open()
    with pytest.raises(ScannerDisconnected):
        driver.capture(FLAT)
    assert not device.plugged


def test_a_frame_that_never_comes_times_out() -> None:
    driver = usb_driver(usb_device(faults=FaultConfig(timeout_probability=1.0)))
    driver.open()
    with pytest.raises(ScannerTimeout) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    driver.close()


@pytest.mark.parametrize("fault", ["corrupt_probability", "drop_probability"])
def test_garbled_or_short_frames_raise_protocol_error(fault: str) -> None:
    driver = usb_driver(usb_device(faults=FaultConfig(**{fault: 1.0})))
    driver.open()
    with pytest.raises(ProtocolError) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    assert "bad frame" in str(caught.value)
    driver.close()


def test_faults_wait_until_armed() -> None:
    driver = usb_driver(usb_device(faults=FaultConfig(corrupt_probability=1.0, armed_after=1)))
    driver.open()
    assert driver.capture(FLAT).image.std() > 10
    with pytest.raises(ProtocolError):
        driver.capture(FLAT)
    driver.close()


def test_no_finger() -> None:
    driver = usb_driver(usb_device(faults=FaultConfig(no_finger=True)))
    driver.open()
    assert driver.finger_present() is False
    with pytest.raises(NoFinger) as caught:
        driver.capture(FLAT)
    _named(caught.value, driver, "capture")
    preview = driver.preview(FLAT)  # the live view still shows the empty glass
    assert preview.image.shape == (290, 384) and preview.image.std() < 10
    driver.close()


def test_a_finger_placed_later_is_seen() -> None:
    device = usb_device()
    device.platen.lift_finger()
    driver = usb_driver(device)
    driver.open()
    assert driver.finger_present() is False
    device.platen.place_finger()
    assert driver.finger_present() is True
    driver.close()


def test_a_confused_device_is_power_cycled_by_the_driver() -> None:
    device = usb_device(initial_hwstat=0x85)
    driver = usb_driver(device)
    driver.open()
    assert not device.registers[0x07] & 0x80  # out of low-power mode
    assert driver.capture(FLAT).image.std() > 10
    driver.close()


def test_skin_and_glass_conditions_show_in_the_image() -> None:
    def mean_of(**faults: object) -> float:
        driver = usb_driver(usb_device(faults=FaultConfig(**faults)))
        driver.open()
        try:
            return float(driver.capture(FLAT).image.mean())
        finally:
            driver.close()

    normal = mean_of()
    assert mean_of(moisture=0.8) < normal < mean_of(moisture=-0.8)
    assert mean_of(dirty_platen=1.0) < normal


def test_no_reader_on_the_bus() -> None:
    device = usb_device()
    device.unplug()
    driver = usb_driver(device)
    with pytest.raises(ScannerDisconnected) as caught:
        driver.open()
    _named(caught.value, driver, "open")


def test_config_is_strict() -> None:
    with pytest.raises(ValueError):
        UareUConfig(product_id=0x000B)
    with pytest.raises(ValueError):
        UareUConfig(backend="emulator")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        UareUEmulatorConfig(product_id=0x1234)


def test_a_pulled_reader_comes_back_when_told_to() -> None:
    device = usb_device(faults=FaultConfig(unplug_mid_transfer=True, replug_after_s=0.05))
    driver = usb_driver(device)
    driver.open()
    with pytest.raises(ScannerDisconnected):
        driver.capture(FLAT)
    for _ in range(100):  # what the device worker does: reopen until the reader is back
        try:
            driver.reset()
            break
        except ScannerDisconnected:
            time.sleep(0.01)
    assert driver.capture(FLAT).image.shape == (290, 384)
    driver.close()
