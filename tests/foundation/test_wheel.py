"""What the installed package ships: the runtime and its model, not the workshop."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.timeout(600)
def test_the_wheel_ships_the_model_and_no_training_demo_or_tests(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                    "--no-build-isolation", "--quiet", "-w", str(tmp_path)],
                   check=True, capture_output=True, text=True, timeout=600)
    [wheel] = tmp_path.glob("booking_station-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("booking_station-")}
    assert tops == {"appliance", "central", "drivers", "models"}, tops
    assert not [n for n in names if n.startswith(("models/training", "demo/", "tests/"))]
    assert {"models/minutiae/minutiae.onnx", "models/minutiae/manifest.json"} <= set(names)
    # package data lists only what exists: every kiosk and technician page's files are there
    assert {"appliance/web/static/kiosk.html", "appliance/web/static/kiosk.js",
            "appliance/web/static/admin.html"} <= set(names)
