"""`python -m demo --bookings N` (`make demo`): the smoke test anyone can run, with each broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from demo.broker import mqtt_listening
from tests.conftest import _need_mosquitto

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("broker", ["existing", "mosquitto"])
def test_demo_delivers_every_booking(tmp_path: Path, broker: str) -> None:
    _need_mosquitto()
    if broker == "existing" and not mqtt_listening("127.0.0.1", 1883):
        pytest.skip("no MQTT broker listens on 127.0.0.1:1883 on this machine")
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", broker, "--state-dir", str(tmp_path / "state"), "--timeout", "240"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: OK: the central receiver holds 1 of 1 bookings" in result.stdout
    held = list((tmp_path / "state" / "central" / "transactions").rglob("*.an2"))
    assert len(held) == 1


def test_demo_fails_loudly_when_central_never_answers(tmp_path: Path) -> None:
    """With a broker but no way to finish in time, the demo exits non-zero with the reason."""
    _need_mosquitto()
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", "mosquitto", "--state-dir", str(tmp_path / "state"), "--timeout", "0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "demo: FAILED" in result.stdout


def test_broker_probe_tells_mqtt_from_other_listeners(mosquitto) -> None:
    import socket

    assert mqtt_listening(mosquitto.host, mosquitto.port)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        assert not mqtt_listening("127.0.0.1", plain.getsockname()[1], timeout=0.3)
