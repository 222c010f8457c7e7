"""`booking-station scanner ...` through the real CLI and the real emulated livescan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def scanner(tmp_path: Path, *args: str, process: bool = False) -> dict:
    config = tmp_path / "config.toml"
    config.write_text('[scanner]\ntype = "emulated"\nimage_source = "pattern"\n'
                      f"process = {str(process).lower()}\n")
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "scanner", *args,
                             "--config", str(config)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_names_every_installed_driver(tmp_path: Path) -> None:
    listing = scanner(tmp_path, "list")
    assert {"emulated", "r30x", "uareu"} <= set(listing["driver_types"])
    assert isinstance(listing["serial_ports"], list)


def test_info_shows_identity_and_capabilities(tmp_path: Path) -> None:
    info = scanner(tmp_path, "info")
    assert info["model"] == "Emulated livescan"
    assert info["capabilities"]["ppi"] == 500
    assert "rolled" in info["capabilities"]["modes"]


@pytest.mark.parametrize("process", [False, True], ids=["in-process", "child-process"])
def test_capture_writes_the_image(tmp_path: Path, process: bool) -> None:
    out = tmp_path / "test.png"
    result = scanner(tmp_path, "capture", "--out", str(out), "--mode", "rolled", process=process)
    with Image.open(out) as img:
        assert img.size == (800, 750) == (result["width"], result["height"])
        assert img.mode == "L"


def test_fps_counts_frames(tmp_path: Path) -> None:
    result = scanner(tmp_path, "fps", "--seconds", "0.5")
    assert result["frames"] >= 1 and result["measured_fps"] > 0
