"""The scanner contract: what every driver must do, on an emulator (tests/) or on hardware (hil/).

The tests take two fixtures the including directory provides:

* ``scanner_factory``: a callable returning a fresh, unopened driver for the device under test;
* ``finger_on_platen``: True when a finger lies on the platen for the whole run (emulators: always;
  hardware: the operator says so with ``--finger-on-platen``). Tests that need a finger skip
  without one.

Nothing here knows which driver or transport it runs against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from drivers.base import CaptureMode, Frame, Indicator, ScannerDriver
from drivers.errors import ScannerError, UnsupportedMode


@pytest.fixture
def scanner(scanner_factory: Callable[[], ScannerDriver]) -> Iterator[ScannerDriver]:
    driver = scanner_factory()
    driver.open()
    try:
        yield driver
    finally:
        driver.close()
        driver.shutdown()


def _need_finger(finger_on_platen: bool) -> None:
    if not finger_on_platen:
        pytest.skip("needs a finger on the platen (hardware: pass --finger-on-platen)")


def _assert_declared_image(frame: Frame, driver: ScannerDriver, mode: CaptureMode,
                           *, preview: bool = False) -> None:
    caps = driver.capabilities()
    width, height = caps.preview_size_for(mode) if preview else caps.size_for(mode)
    assert isinstance(frame.image, np.ndarray)
    assert frame.image.dtype == np.uint8
    assert frame.image.shape == (height, width)
    assert frame.ppi == ((caps.preview_ppi or caps.ppi) if preview else caps.ppi)


def test_open_then_close_twice(scanner_factory: Callable[[], ScannerDriver]) -> None:
    driver = scanner_factory()
    driver.open()
    driver.close()
    driver.close()


def test_identity_names_the_device(scanner: ScannerDriver) -> None:
    identity = scanner.identity()
    assert identity.vendor.strip()
    assert identity.model.strip()
    assert scanner.name.strip()


def test_capabilities_are_self_consistent(scanner: ScannerDriver) -> None:
    caps = scanner.capabilities()
    width, height = caps.image_size
    assert width > 0 and height > 0
    assert 250 <= caps.ppi <= 1000
    assert caps.modes, "a scanner must offer at least one capture mode"
    assert caps.preview_fps > 0
    # The declared platen matches the image at the declared resolution within 10 %.
    for pixels, mm in zip(caps.image_size, caps.platen_mm, strict=True):
        assert abs(pixels / caps.ppi * 25.4 - mm) <= 0.1 * mm
    assert caps.as_dict()["image_size"] == [width, height]


def test_finger_present_sees_the_finger(scanner: ScannerDriver, finger_on_platen: bool) -> None:
    _need_finger(finger_on_platen)
    assert scanner.finger_present() is True


def test_capture_returns_the_declared_image(
    scanner: ScannerDriver, finger_on_platen: bool
) -> None:
    _need_finger(finger_on_platen)
    mode = sorted(scanner.capabilities().modes)[0]
    first = scanner.capture(mode)
    second = scanner.capture(mode)
    _assert_declared_image(first, scanner, mode)
    _assert_declared_image(second, scanner, mode)
    assert first.image.std() > 10, "a finger gives ridges, not a flat image"
    assert second.sequence > first.sequence


def test_preview_frame_has_the_declared_shape(
    scanner: ScannerDriver, finger_on_platen: bool
) -> None:
    _need_finger(finger_on_platen)
    mode = sorted(scanner.capabilities().modes)[0]
    _assert_declared_image(scanner.preview(mode), scanner, mode, preview=True)


def test_undeclared_modes_are_refused(scanner: ScannerDriver) -> None:
    missing = set(CaptureMode) - set(scanner.capabilities().modes)
    for mode in sorted(missing):
        with pytest.raises(UnsupportedMode) as caught:
            scanner.capture(mode)
        assert caught.value.device == scanner.name
        assert caught.value.operation


def test_every_indicator_is_accepted(scanner: ScannerDriver) -> None:
    for indicator in Indicator:
        scanner.indicate(indicator)


def test_reset_brings_the_device_back(scanner: ScannerDriver, finger_on_platen: bool) -> None:
    scanner.reset()
    scanner.reset()
    assert scanner.identity().model
    if finger_on_platen:
        mode = sorted(scanner.capabilities().modes)[0]
        _assert_declared_image(scanner.capture(mode), scanner, mode)


def test_a_closed_driver_fails_with_a_named_error(
    scanner_factory: Callable[[], ScannerDriver],
) -> None:
    driver = scanner_factory()
    driver.open()
    driver.close()
    mode = sorted(driver.capabilities().modes)[0]
    with pytest.raises(ScannerError) as caught:
        driver.capture(mode)
    assert caught.value.device == driver.name
    assert caught.value.operation == "capture"
