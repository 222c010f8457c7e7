"""`booking-station demo --bookings N`: the smoke test anyone can run, with each broker choice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_demo_delivers_every_booking(tmp_path: Path, broker: str) -> None:
    if broker == "mosquitto":
        from tests.conftest import _need_mosquitto

        _need_mosquitto()
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", broker, "--state-dir", str(tmp_path / "state"), "--timeout", "240"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: OK: the central receiver holds 1 of 1 bookings" in result.stdout
    held = list((tmp_path / "state" / "central" / "transactions").rglob("*.an2"))
    assert len(held) == 1


def test_demo_fails_loudly_when_central_never_answers(tmp_path: Path) -> None:
    """With a broker but no way to finish in time, the demo exits non-zero with the reason."""
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", "embedded", "--state-dir", str(tmp_path / "state"), "--timeout", "0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "demo: FAILED" in result.stdout


def test_broker_probe_tells_mqtt_from_other_listeners(mosquitto) -> None:
    import socket

    from appliance.demo import mqtt_listening

    assert mqtt_listening(mosquitto.host, mosquitto.port)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        assert not mqtt_listening("127.0.0.1", plain.getsockname()[1], timeout=0.3)
