"""The kiosk screen's launcher with a real Chromium and a real station: the message page while
the station is down, the kiosk page once it answers, and back to the message (then the kiosk)
across a station restart. Chromium runs headless here; under cage it is the same browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.system.conftest import INSTALL, StationProcess, write_station_config

pytestmark = pytest.mark.browser


def shown(debug_port: int) -> tuple[str, str] | None:
    """(url, title) of the page Chromium shows, from its DevTools endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list", timeout=5) as res:
            pages = [p for p in json.loads(res.read()) if p.get("type") == "page"]
    except OSError:
        return None
    return (pages[0]["url"], pages[0]["title"]) if pages else None


def wait_shown(debug_port: int, predicate, timeout: float, what: str) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = shown(debug_port)
        if last is not None and predicate(*last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"screen did not show {what} within {timeout} s; last: {last}")


def on_message_page(url: str, title: str) -> bool:
    return url.startswith("file://") and url.endswith("station-down.html") \
        and title == "Booking station not running"


def test_message_kiosk_and_back_across_a_station_restart(
        tmp_path: Path, mosquitto, station_process: list[StationProcess]) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package: chromium)")
    web, debug = free_port(), free_port()
    kiosk_url = f"http://127.0.0.1:{web}/"
    flags = ["--headless=new", f"--remote-debugging-port={debug}", "--disable-gpu"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")
    launcher = subprocess.Popen(
        [sys.executable, str(INSTALL / "kiosk" / "launcher.py"), "--url", kiosk_url,
         "--browser", browser, "--profile", str(tmp_path / "profile"), "--poll", "0.5",
         *[f"--browser-arg={f}" for f in flags]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the station is not running yet: the message, not a browser error
        wait_shown(debug, on_message_page, 120, "the message page")
        config = write_station_config(tmp_path, mosquitto.port, web)
        first = StationProcess(tmp_path, config, web)
        station_process.append(first)
        first.start()
        first.notify.wait_for("READY=1", 180)
        wait_shown(debug, lambda url, _t: url == kiosk_url, 60, "the kiosk page")

        assert first.stop() == 0  # a restart, an upgrade, a crash: the station goes away
        wait_shown(debug, on_message_page, 120, "the message page again")

        second = StationProcess(tmp_path, config, web)
        station_process.append(second)
        second.start()
        second.notify.wait_for("READY=1", 180)
        wait_shown(debug, lambda url, _t: url == kiosk_url, 60, "the kiosk page again")
        assert launcher.poll() is None  # the screen's service never stopped
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(30)
        except subprocess.TimeoutExpired:
            launcher.kill()
