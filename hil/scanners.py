"""Turns a ``--scanner`` spec into a driver factory, and says why a device is absent.

Specs::

    serial:///dev/ttyUSB0              serial:/dev/serial/by-id/usb-...?baudrate=115200
    serial:r30xemu://?finger_seed=2    (the emulator: a dry run of the hardware suite)
    usb:05ba:000a                      usb:05ba:0007?serial_number={...}
    usb:emulator                       (the emulated U.are.U)
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import ScannerDriver
from drivers.r30x import R30xConfig, R30xDriver
from drivers.uareu import UareUConfig, UareUDriver, UareUEmulatorConfig


@dataclass(frozen=True)
class ScannerUnderTest:
    """How to build the driver, and why it cannot run here (empty when it can)."""

    factory: Callable[[], ScannerDriver]
    absent_reason: str


def _options(query: str) -> dict[str, object]:
    options: dict[str, object] = {}
    for key, value in urllib.parse.parse_qsl(query):
        options[key] = int(value, 0) if value.lstrip("-").isdigit() or value.startswith("0x") \
            else value
    return options


def scanner_under_test(spec: str) -> ScannerUnderTest:
    """Parse ``spec``; raises ValueError when it is not one of the forms above."""
    kind, _, rest = spec.partition(":")
    if kind == "serial":
        if rest.startswith("r30xemu://"):
            config = R30xConfig(port=rest)
            return ScannerUnderTest(lambda: R30xDriver(config), "")
        path, _, query = rest.removeprefix("//").partition("?")
        config = R30xConfig(port=path, **_options(query))
        absent = "" if os.path.exists(path) else f"no serial device at {path}"
        return ScannerUnderTest(lambda: R30xDriver(config), absent)
    if kind == "usb":
        if rest == "emulator":
            emulated = UareUEmulatorConfig(finger_source="pattern")
            config = UareUConfig(usb_backend="emulator", emulator=emulated)
            return ScannerUnderTest(lambda: UareUDriver(config), "")
        ids, _, query = rest.partition("?")
        vendor, _, product = ids.partition(":")
        if vendor.lower() != "05ba" or not product:
            raise ValueError(f"USB spec must be usb:05ba:<product>, got {spec!r}")
        config = UareUConfig(product_id=int(product, 16), **_options(query))
        return ScannerUnderTest(lambda: UareUDriver(config), _usb_absent(0x05BA, int(product, 16)))
    raise ValueError(f"unknown scanner spec {spec!r}: use serial:... or usb:...")


def station_scanner_toml(spec: str) -> str:
    """The station config's ``[scanner]`` section for ``spec`` (the same forms as above)."""
    kind, _, rest = spec.partition(":")
    if kind == "serial":
        if rest.startswith("r30xemu://"):
            return f'type = "r30x"\nport = "{rest}"\n'
        path, _, query = rest.removeprefix("//").partition("?")
        lines = ['type = "r30x"', f'port = "{path}"']
    elif kind == "usb" and rest == "emulator":
        return ('type = "uareu"\nusb_backend = "emulator"\n'
                '[scanner.emulator]\nfinger_source = "pattern"\n')
    elif kind == "usb":
        ids, _, query = rest.partition("?")
        lines = ['type = "uareu"', f"product_id = {int(ids.partition(':')[2], 16)}"]
    else:
        raise ValueError(f"unknown scanner spec {spec!r}: use serial:... or usb:...")
    for key, value in _options(query).items():
        lines.append(f"{key} = {value!r}" if isinstance(value, int) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def _usb_absent(vendor: int, product: int) -> str:
    import usb.backend.libusb1
    import usb.core

    backend = usb.backend.libusb1.get_backend()
    if backend is None:
        return "libusb-1.0 is not installed"
    try:
        found = usb.core.find(idVendor=vendor, idProduct=product, backend=backend)
    except usb.core.USBError as exc:
        return f"cannot list USB devices: {exc}"
    return "" if found is not None else f"no USB device {vendor:04x}:{product:04x}"
