"""The technician's page in a real Chromium against a running station: as a technician uses it.

Screenshots of each step are kept in ``tests/artifacts/technician/`` (ignored by git) to be
looked at; axe-core checks each page for serious or critical WCAG 2.1 AA violations.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import free_port
from tests.e2e.a11y import serious_violations

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "technician"


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def a_booking(rig, number: str) -> None:
    booking = rig.station.booking
    await booking.start(number)
    while booking.current_step is not None:
        await booking.capture()
        await booking.accept()
    await booking.submit()


@pytest.mark.timeout(900)  # one technician's whole round on a shared, loaded machine
async def test_sign_in_lockout_audit_and_charts(station_rig, browser, shots: Path) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"})
    await a_booking(rig, "BK-PRIVATE-99")
    base = f"http://127.0.0.1:{rig.station.web_port}"

    # signing in: /admin sends a stranger to the sign-in form
    tech = await (await browser.new_context(accept_downloads=True)).new_page()
    await tech.goto(base + "/admin")
    assert tech.url == base + "/admin/login"
    assert await serious_violations(tech) == []
    await tech.screenshot(path=str(shots / "01-sign-in.png"))
    await tech.fill("#user", "tech")
    await tech.fill("#password", rig.password)
    await tech.click("#signin-button")
    await tech.wait_for_url(base + "/admin")
    await expect(tech.locator("#chain")).to_contain_text("Chain verifies", timeout=60_000)
    await expect(tech.locator("#health tbody tr")).not_to_have_count(0, timeout=60_000)
    await expect(tech.locator("#charts-section")).to_have_attribute("data-drawn", "day",
                                                                    timeout=60_000)
    assert await tech.locator("#charts-section canvas").count() == 4
    assert await serious_violations(tech) == []
    await tech.screenshot(path=str(shots / "02-health-and-charts.png"), full_page=True)
    text = await tech.inner_text("body")
    assert "BK-PRIVATE-99" not in text and "Scanner" in text and "green" in text
    assert await tech.locator("img").count() == 0

    # five wrong passwords from another browser: the name and the address are locked
    guesser = await (await browser.new_context()).new_page()
    await guesser.goto(base + "/admin/login")
    for n in range(5):
        await guesser.fill("#user", "tech")
        await guesser.fill("#password", f"wrong-{n}")
        await guesser.click("#signin-button")
        await expect(guesser.locator("#signin-message")).to_contain_text(
            "Locked" if n == 4 else "Wrong name or password", timeout=60_000)
        if n < 4:
            await guesser.evaluate("document.getElementById('signin-message').textContent = ''")
    await guesser.fill("#user", "tech")
    await guesser.fill("#password", rig.password)
    await guesser.click("#signin-button")
    await expect(guesser.locator("#signin-message")).to_contain_text("Locked", timeout=60_000)
    assert guesser.url == base + "/admin/login"
    await guesser.screenshot(path=str(shots / "03-locked.png"))

    # the signed-in technician is not locked out, and sees the failures in the audit log
    await tech.select_option("#f-action", "login_failed")
    await tech.click("#apply-filter")
    rows = tech.locator("#audit tbody tr")
    await expect(rows).to_have_count(6, timeout=60_000)  # 5 wrong, 1 refused while locked
    await tech.select_option("#f-action", "login_locked")
    await tech.click("#apply-filter")
    await expect(rows).to_have_count(1, timeout=60_000)
    await tech.screenshot(path=str(shots / "04-audit-filtered.png"), full_page=True)
    async with tech.expect_download() as caught:
        await tech.click("#export")
    download = await caught.value
    saved = shots / "audit-login_locked.jsonl"
    await download.save_as(str(saved))
    [entry] = [json.loads(line) for line in saved.read_text().splitlines()]
    assert entry["action"] == "login_locked" and entry["detail"]["locked"] == ["addr", "user"]

    await tech.click("#span-month")
    await expect(tech.locator("#charts-section")).to_have_attribute("data-drawn", "month",
                                                                    timeout=60_000)
    await tech.locator("#charts-section").screenshot(path=str(shots / "05-charts-30-days.png"))

    # a configuration change, then one that leaves the link down: it rolls back by itself
    rig.station.reconfigurer.timeout_s = 6.0
    await tech.fill("#config-change", "[mqtt]\nack_timeout_s = 7.5")
    await tech.click("#config-check")
    await expect(tech.locator("#config-result")).to_contain_text("central link", timeout=60_000)
    await tech.click("#config-apply")
    await expect(tech.locator("#config-result")).to_contain_text("Applied", timeout=120_000)
    assert rig.station.config.mqtt.ack_timeout_s == 7.5
    await tech.locator("#config-section").screenshot(path=str(shots / "06-config-applied.png"))
    await tech.fill("#config-change", f"[mqtt]\nport = {free_port()}")
    await tech.click("#config-apply")
    await expect(tech.locator("#config-result")).to_contain_text("Rolled back by itself",
                                                                 timeout=120_000)
    await expect(tech.locator("#config-diff")).to_contain_text("mqtt.port")
    assert rig.station.config.mqtt.ack_timeout_s == 7.5
    await tech.locator("#config-section").screenshot(path=str(shots / "07-config-rolled-back.png"))
    await tech.select_option("#f-action", "config_rolled_back")
    await tech.click("#apply-filter")
    await expect(rows).to_have_count(1, timeout=60_000)
    assert await serious_violations(tech) == []

    # scanner diagnostics: the technician's own test capture and the frame rate
    await tech.click("#scanner-rate")
    await expect(tech.locator("#scanner-result")).to_contain_text("frames per second",
                                                                  timeout=60_000)
    await tech.click("#scanner-capture")
    await expect(tech.locator("#scanner-shot img")).to_have_js_property("complete", True,
                                                                        timeout=60_000)
    assert await tech.locator("#scanner-shot img").evaluate("i => i.naturalWidth") > 0
    await tech.locator("#scanner-section").screenshot(path=str(shots / "08-scanner.png"))

    # the diagnostics bundle: redacted, and without the subject
    async with tech.expect_download() as caught:
        await tech.click("#bundle")
    bundle = shots / "diagnostics.zip"
    await (await caught.value).save_as(str(bundle))
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        everything = b"".join(archive.read(n) for n in names)
    assert {"config.json", "health.json", "history.json", "logs.txt", "outbox.json"} <= names
    assert b"BK-PRIVATE-99" not in everything

    # signing out ends the session on the station
    await tech.click("#logout")
    await tech.wait_for_url(base + "/admin/login")
    answer = await tech.request.get(base + "/api/admin/health")
    assert answer.status == 401
