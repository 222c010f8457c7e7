"""Builders of emulated devices and drivers with short time limits, for the driver tests."""

from __future__ import annotations

import urllib.parse

from drivers.r30x import R30xConfig, R30xDriver
from drivers.uareu import UareUBackend, UareUConfig, UareUDevice, UareUDriver, UareUEmulatorConfig


def emulator_url(**options: object) -> str:
    """An ``r30xemu://`` URL with the built-in finger pattern and the given options."""
    query = {"finger_source": "pattern", **options}
    return "r30xemu://?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})


def serial_driver(port: str, **overrides: object) -> R30xDriver:
    """The serial driver with time limits short enough for quick fault tests, and long enough
    that an emulator descheduled on a loaded machine is not taken for a silent module."""
    settings: dict[str, object] = {"timeout_s": 5.0, "packet_timeout_s": 2.0, **overrides}
    return R30xDriver(R30xConfig(port=port, **settings))


def usb_device(**settings: object) -> UareUDevice:
    """An emulated U.are.U with the built-in finger pattern."""
    settings.setdefault("finger_source", "pattern")
    return UareUDevice(UareUEmulatorConfig(**settings))


def usb_driver(device: UareUDevice, **overrides: object) -> UareUDriver:
    """The USB driver on the emulator backend, with short time limits."""
    settings: dict[str, object] = {"capture_timeout_s": 0.3, "finger_wait_s": 0.1, **overrides}
    return UareUDriver(UareUConfig(**settings), backend=UareUBackend(device))
