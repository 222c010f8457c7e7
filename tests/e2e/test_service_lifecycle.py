"""The station as systemd runs it: a child process, sd_notify, SIGTERM mid-booking."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from demo.run import prepare_officer, prepare_state
from tests.conftest import free_port
from tests.kiosk_client import OFFICER, PIN, KioskClient

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, broker_port: int, web_port: int) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[station]
station_id = "svc-1"
data_dir = "{tmp / 'station'}"
[scanner]
type = "emulated"
seed = 5
[store]
min_free_mb = 1
[mqtt]
port = {broker_port}
reconnect_min_s = 0.1
[web]
port = {web_port}
[capture]
sequence = "flats"
[records]
profile = "local-flats"
[system]
stop_timeout_s = 8
""")
    return path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, text: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, msg in self.messages:
                if text in msg.split("\n"):
                    return at
            time.sleep(0.05)
        raise AssertionError(f"{text} not received; got {[m for _, m in self.messages]}")

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def start_station(tmp: Path, config: Path, notify: NotifySocket) -> subprocess.Popen[str]:
    creds, _ = prepare_state(tmp)
    prepare_officer(creds, OFFICER, PIN)
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds), NOTIFY_SOCKET=str(notify.path),
               WATCHDOG_USEC="1000000", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "appliance.cli", "run", "--config",
                             str(config)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_ready_watchdog_and_stopping(tmp_path: Path, mosquitto) -> None:
    web = free_port()
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = start_station(tmp_path, write_config(tmp_path, mosquitto.port, web), notify)
    try:
        ready_at = notify.wait_for("READY=1", 90)
        # READY means a booking can be taken: the kiosk answers and the scanner is ready
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/health", timeout=30) as res:
            assert json.loads(res.read()) == {"ok": True, "scanner": "ready"}
        assert notify.wait_for("WATCHDOG=1", 5) >= ready_at - 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        notify.wait_for("STOPPING=1", 1)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


@pytest.mark.parametrize("delay_s", [0.0, 0.15, 0.4])
def test_sigterm_during_submit_stores_all_or_nothing(tmp_path: Path, mosquitto,
                                                     delay_s: float) -> None:
    web = free_port()
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = start_station(tmp_path, write_config(tmp_path, mosquitto.port, web), notify)
    try:
        notify.wait_for("READY=1", 90)
        kiosk = KioskClient(web, timeout=60)
        kiosk.post("/api/booking", {"booking_number": "BK-TERM"})
        for _ in range(3):
            kiosk.post("/api/capture")
            kiosk.post("/api/accept")
        submitter = threading.Thread(target=lambda: _submit_quietly(kiosk), daemon=True)
        submitter.start()
        time.sleep(delay_s)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    db = sqlite3.connect(tmp_path / "station" / "station.db")
    bookings = db.execute("SELECT booking_id FROM bookings").fetchall()
    drafts = db.execute("SELECT booking_id FROM drafts").fetchall()
    # the booking is either committed whole or still a draft with every accepted print
    assert len(bookings) + len(drafts) == 1
    if bookings:
        (bid,) = bookings[0]
        assert db.execute("SELECT COUNT(*) FROM impressions WHERE booking_id = ?",
                          (bid,)).fetchone()[0] == 3
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE booking_id = ?",
                          (bid,)).fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM draft_impressions").fetchone()[0] == 0
    else:
        assert db.execute("SELECT COUNT(*) FROM draft_impressions").fetchone()[0] == 3
        assert db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0] == 0


def _submit_quietly(kiosk: KioskClient) -> None:
    try:
        kiosk.post("/api/submit")
    except OSError:
        pass  # the server went away mid-request; the database tells what happened


def test_port_in_use_is_named(tmp_path: Path, mosquitto) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        creds, _ = prepare_state(tmp_path)
        result = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "run", "--config",
             str(write_config(tmp_path, mosquitto.port, port))],
            env=dict(os.environ, CREDENTIALS_DIRECTORY=str(creds)), cwd=REPO,
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "another program uses the port" in result.stderr
