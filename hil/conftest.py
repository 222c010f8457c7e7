"""Hardware-in-the-loop: the scanner contract of tests/drivers against a real device.

    pytest hil --scanner serial:///dev/ttyUSB0 --finger-on-platen
    pytest hil --scanner usb:05ba:000a

Without ``--scanner`` (or ``BST_HIL_SCANNER``), or when the device is not there, every test is
skipped with the reason. ``--finger-on-platen`` tells the suite a finger rests on the glass for
the whole run; tests that need one skip otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The contract lives with the emulator tests and is imported unchanged; the station runner
# (tests/system) too.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "drivers"))
sys.path.insert(0, str(REPO))

from scanners import scanner_under_test  # noqa: E402

from drivers.base import ScannerDriver  # noqa: E402
from tests.conftest import MosquittoProcess, _need_mosquitto, free_port  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--scanner",
        default=os.environ.get("BST_HIL_SCANNER", ""),
        help="device under test: serial:///dev/ttyUSB0, usb:05ba:000a, ... (see hil/scanners.py)",
    )
    parser.addoption(
        "--finger-on-platen",
        action="store_true",
        default=os.environ.get("BST_HIL_FINGER") == "1",
        help="a finger rests on the platen during the whole run",
    )
    parser.addoption(
        "--hot-plug",
        action="store_true",
        default=os.environ.get("BST_HIL_HOT_PLUG") == "1",
        help="a technician is at the station to unplug and replug the scanner when told",
    )


@pytest.fixture(scope="session")
def scanner_factory(request: pytest.FixtureRequest) -> Callable[[], ScannerDriver]:
    spec = request.config.getoption("--scanner")
    if not spec:
        pytest.skip("no --scanner given (e.g. --scanner serial:///dev/ttyUSB0)")
    under_test = scanner_under_test(spec)
    if under_test.absent_reason:
        pytest.skip(under_test.absent_reason)
    return under_test.factory


@pytest.fixture(scope="session")
def finger_on_platen(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--finger-on-platen"))


@pytest.fixture(scope="session")
def scanner_spec(request: pytest.FixtureRequest, scanner_factory: Callable[[], ScannerDriver]
                 ) -> str:
    """The --scanner spec (only once the device is known to be there)."""
    return str(request.config.getoption("--scanner"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A Mosquitto on a free port for the station under test."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = MosquittoProcess("127.0.0.1", port, conf, binary=_need_mosquitto())
    process.start()
    yield process
    process.stop()
