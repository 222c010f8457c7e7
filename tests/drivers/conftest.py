"""Fixtures of the driver tests: every driver on its device-side emulator.

``scanner_factory`` runs the shared contract (scanner_contract.py, also used by hil/) over each
driver/emulator pair: the serial driver behind a pseudo-terminal and behind the ``r30xemu://``
URL, the USB driver on the pyusb emulator backend (4000B/4500 scrambling, and a plain 4000).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scanner_contract, for hil/ as well

from emulated_devices import emulator_url, serial_driver  # noqa: E402

from drivers.base import ScannerDriver  # noqa: E402
from drivers.faults import FaultConfig  # noqa: E402
from drivers.r30x.emulator import R30xEmulator, R30xEmulatorConfig  # noqa: E402
from drivers.uareu import UareUConfig, UareUDriver, UareUEmulatorConfig  # noqa: E402


@pytest.fixture
def pty_emulator(tmp_path: Path) -> Iterator[Callable[..., R30xEmulator]]:
    """Starts R30x emulators behind ptys (with a by-id style link); fails on thread errors."""
    started: list[R30xEmulator] = []

    def start(faults: FaultConfig | None = None, **settings: object) -> R30xEmulator:
        config = R30xEmulatorConfig(finger_source="pattern", faults=faults or FaultConfig(),
                                    **settings)
        link = tmp_path / f"usb-Grow_R503-if00-port{len(started)}"
        emulator = R30xEmulator.on_pty(config, link=link).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
    errors = [e.error for e in started if e.error is not None]
    assert not errors, f"emulator thread failed: {errors!r}"


@pytest.fixture(
    params=["r30x-pty", "r30x-url", "uareu-4000b", "uareu-4000", "livescan", "livescan-process"]
)
def scanner_factory(
    request: pytest.FixtureRequest, pty_emulator: Callable[..., R30xEmulator]
) -> Callable[[], ScannerDriver]:
    if request.param == "r30x-pty":
        emulator = pty_emulator()
        return lambda: serial_driver(emulator.port)
    if request.param == "r30x-url":
        return lambda: serial_driver(emulator_url())
    if request.param == "livescan":
        from drivers.emulated import EmulatedConfig, EmulatedLivescan

        def livescan() -> EmulatedLivescan:
            driver = EmulatedLivescan(EmulatedConfig(image_source="pattern"))
            driver.guide(2)  # the subject puts the right index down
            return driver

        return livescan
    if request.param == "livescan-process":
        from drivers.emulated import EmulatedConfig, EmulatedLivescan
        from drivers.isolated import IsolatedDriver

        made: list[IsolatedDriver] = []
        request.addfinalizer(lambda: [d.shutdown() for d in made])

        def livescan_process() -> IsolatedDriver:
            config = EmulatedConfig(image_source="pattern", process=True)
            driver = IsolatedDriver(EmulatedLivescan, config)
            made.append(driver)
            driver.guide(2)
            return driver

        return livescan_process
    product = 0x000A if request.param == "uareu-4000b" else 0x0007
    emulated = UareUEmulatorConfig(product_id=product, finger_source="pattern")
    return lambda: UareUDriver(UareUConfig(usb_backend="emulator", emulator=emulated,
                                           product_id=product))


@pytest.fixture
def finger_on_platen() -> bool:
    return True


@pytest.fixture(autouse=True)
def _independent_of_the_synthetic_generator() -> Iterator[None]:
    """These tests use the built-in finger pattern; none may start growing a synthetic hand."""
    yield
    growing = [t for t in threading.enumerate() if t.name == "synthetic-finger"]
    assert not growing, "a test emulator used finger_source='auto'; pass 'pattern'"
