"""The operators' fleet page in Debian's Chromium: real `booking-central metrics`, a real
broker, one real station and others publishing telemetry as stations do."""

from __future__ import annotations

import asyncio
import hashlib

import paho.mqtt.client as mqtt
import pytest
from playwright.async_api import expect

from appliance.sync import telemetry
from appliance.sync.config import TelemetrySettings
from appliance.system.health import Health
from tests.central.test_metrics import central, started, stop
from tests.conftest import REPO, free_port
from tests.e2e.a11y import serious_violations
from tests.sync.conftest import commit_many

pytestmark = pytest.mark.browser
VENDOR = REPO / "central" / "static" / "vendor"


def health(station: str, **figures) -> bytes:
    base = dict(station_id=station, queue_depth=0, oldest_unsent_age_s=None, disk_free_mb=5000,
                scanner_state="ready", audit_head="0" * 64, audit_entries=10,
                clock="synchronised", link_connects=1, disk_total_mb=10000)
    base.update(figures)
    return Health(**base).encode()


class Fleet:
    """Stations that are only their telemetry, published where and as stations publish it."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, station: str, kind: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(f"bst-telemetry/{station}/{kind}", payload, qos=1,
                            retain=retain).wait_for_publish(30)

    def born(self, station: str) -> None:
        self.send(station, "status", telemetry.birth(
            station, capabilities={}, scanner={}, config_hash="0" * 16,
            models={"minutiae": "m-1"}), retain=True)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_vendored_chart_library_is_the_recorded_release() -> None:
    readme = (VENDOR / "README.md").read_text()
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() in readme, name


async def test_fleet_page_states_sorting_and_history(mosquitto, service_rig, browser,
                                                     artifacts, loop_errors) -> None:
    port = free_port()
    server = central("metrics", "--host", mosquitto.host, "--port", str(mosquitto.port),
                     "--listen-port", str(port), "--stale-after", "600")
    fleet = await asyncio.to_thread(Fleet, mosquitto.host, mosquitto.port)
    try:
        await started(server, "central fleet")
        for station in ("st-green", "st-amber", "st-scanner", "st-gone"):
            await asyncio.to_thread(fleet.born, station)
        await asyncio.to_thread(fleet.send, "st-green", "health", health("st-green"))
        await asyncio.to_thread(fleet.send, "st-amber", "health", health(
            "st-amber", queue_depth=12, oldest_unsent_age_s=3 * 3600.0))
        for state in ("ready", "ready", "disconnected"):
            await asyncio.to_thread(fleet.send, "st-scanner", "health",
                                    health("st-scanner", scanner_state=state, queue_depth=1,
                                           oldest_unsent_age_s=600.0))
        await asyncio.to_thread(fleet.send, "st-scanner", "alerts", telemetry.event(
            "st-scanner", "scanner", "scanner unplugged"))
        await asyncio.to_thread(fleet.send, "st-gone", "status", telemetry.will("st-gone"),
                                True)

        # a real station: bookings wait while uploads are paused, then drain
        rig = await service_rig(mosquitto.host, mosquitto.port, station_id="st-real",
                                telemetry=TelemetrySettings(interval_s=0.3))
        rig.service.uploader.pause()
        txids, _ = await commit_many(rig.store, 4, size=5_000, prefix="BK-SECRET-")

        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"http://127.0.0.1:{port}/")
        rows = page.locator("#fleet tbody tr")
        await expect(rows).to_have_count(5, timeout=60_000)

        # worst backlog first by default
        await expect(rows.first).to_have_attribute("data-station", "st-amber", timeout=30_000)
        amber = page.locator('tr[data-station="st-amber"]')
        await expect(amber).to_have_attribute("data-colour", "amber")
        await expect(amber.locator(".reason")).to_contain_text("oldest unsent booking 3 h old")
        scanner = page.locator('tr[data-station="st-scanner"]')
        await expect(scanner).to_have_attribute("data-colour", "red")
        await expect(scanner.locator(".reason")).to_contain_text("scanner disconnected")
        gone = page.locator('tr[data-station="st-gone"]')
        await expect(gone).to_have_attribute("data-colour", "red")
        await expect(gone.locator(".reason")).to_contain_text("offline")
        await expect(page.locator('tr[data-station="st-green"]')).to_have_attribute(
            "data-colour", "green")
        await expect(page.locator("#counts")).to_contain_text("5 stations")
        await page.screenshot(path=str(artifacts / "fleet-by-backlog.png"), full_page=True)

        await page.click('button[data-sort="backlog_age_s"]')  # now the smallest first
        await expect(page.locator('th[aria-sort="ascending"]')).to_have_count(1)
        order = await rows.evaluate_all("rows => rows.map(r => r.dataset.station)")
        assert order.index("st-amber") == len(order) - 1
        await page.click('button[data-sort="station_id"]')
        await expect(rows.first).to_have_attribute("data-station", "st-amber")

        # the real station's history: a backlog, then the drain
        await expect(page.locator('tr[data-station="st-real"] .queue')).to_have_text(
            "4", timeout=60_000)
        rig.service.uploader.resume()
        rig.service.wake()
        await rig.wait_all_stored(txids)
        await expect(page.locator('tr[data-station="st-real"] .queue')).to_have_text(
            "0", timeout=60_000)
        await page.click('tr[data-station="st-real"] .station a')
        await expect(page.locator("#detail")).to_be_visible()
        await expect(page.locator("#detail-title")).to_have_text("Station st-real")
        for chart in ("chart-queue", "chart-drain", "chart-scanner"):
            await expect(page.locator(f"#{chart} canvas")).to_have_count(1, timeout=30_000)
        await page.screenshot(path=str(artifacts / "station-st-real.png"), full_page=True)

        await page.goto(f"http://127.0.0.1:{port}/#st-scanner")
        await expect(page.locator("#scanner-events")).to_contain_text("disconnected",
                                                                      timeout=30_000)
        await expect(page.locator("#alerts")).to_contain_text("scanner unplugged")
        await page.screenshot(path=str(artifacts / "station-st-scanner.png"), full_page=True)

        body = await page.inner_text("body")
        assert "BK-SECRET" not in body and not any(t in body for t in txids)
        assert await serious_violations(page) == []
        assert errors == []
    finally:
        await asyncio.to_thread(fleet.close)
        await asyncio.to_thread(stop, server)
