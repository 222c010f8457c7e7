"""The officer's kiosk as an officer uses it, in Debian's Chromium, on the ten-print emulator.

Every step is photographed into the test's artifacts (``$KIOSK_SCREENSHOTS`` when set, else the
test's temporary folder), every screen is checked with axe-core (no serious or critical WCAG 2.1
AA violation), and the current step's controls must fit the screen without scrolling.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from appliance.domain import Annotation, Position
from appliance.system.clock import ClockTrust, kernel_clock_state
from tests.e2e.a11y import serious_violations
from tests.e2e.test_kiosk_browser import browser  # noqa: F401  (the fixture)
from tests.kiosk_client import OFFICER, PIN

pytestmark = pytest.mark.browser
expect.set_options(timeout=120_000)  # a loaded machine: wait long for what must come

SHARING = {"version": "2026-02", "destinations": [
    {"name": "State AFIS", "purpose": "identification and criminal history"},
    {"name": "Regional research pool", "purpose": "de-identified quality statistics",
     "mandatory": False}]}
#: Controls of the capture step that must be on screen without scrolling.
STEP_CONTROLS = ("#prompt", "#hands", "#capture", "#accept", "#accept-override", "#retake",
                 "#keep-old", "#cancel", "#verdict", "#pending", "#preview")


class Camera:
    """Screenshots of every step, numbered in order."""

    def __init__(self, page: Page, folder: Path, name: str) -> None:
        self.page, self.folder, self.name, self.count = page, folder, name, 0
        folder.mkdir(parents=True, exist_ok=True)

    async def shot(self, step: str) -> None:
        self.count += 1
        name = f"{self.name}-{self.count:02d}-{step}.png"
        await self.page.screenshot(path=str(self.folder / name))


def artifacts(tmp_path: Path) -> Path:
    return Path(os.environ.get("KIOSK_SCREENSHOTS", tmp_path / "screenshots"))


async def fits(page: Page, *selectors: str) -> None:
    """Every visible control named is inside the viewport: nothing to scroll to."""
    size = page.viewport_size
    assert size is not None
    for selector in selectors:
        locator = page.locator(selector)
        if not await locator.is_visible():
            continue
        box = await locator.bounding_box()
        assert box is not None, selector
        assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1, (selector, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, (selector, box)
    scroll = await page.evaluate("() => document.scrollingElement.scrollHeight")
    assert scroll <= size["height"] + 1, f"the page scrolls: {scroll} > {size['height']}"


async def no_serious_violations(page: Page) -> None:
    found = await serious_violations(page)
    assert found == [], found


async def sign_in(page: Page, ready: str = "#start-panel:not([hidden])") -> None:
    await page.wait_for_selector("#signin-panel:not([hidden])")
    await page.fill("#officer-id", OFFICER)
    await page.fill("#officer-pin", PIN)
    await page.click("#signin")
    await page.wait_for_selector(ready)


async def sign_in_again(page: Page, panel: str) -> None:
    """Sign in after the idle lock until ``panel`` shows the booking again.

    The lock here is 15 s (the least allowed); on a loaded machine it can fall again before the
    page has shown the booking, and the officer then signs in once more.
    """
    for _ in range(4):
        await page.wait_for_selector("#signin-panel:not([hidden])")
        await page.fill("#officer-id", OFFICER)
        await page.fill("#officer-pin", PIN)
        await page.click("#signin")
        signed_in = False
        for _ in range(1200):  # about 120 s: the page shows the booking, or locks again
            if await page.is_visible(panel):
                return
            if await page.is_visible("#signin-error"):
                raise AssertionError("sign-in refused: " + await page.inner_text("#signin-error"))
            hidden = await page.is_hidden("#signin-panel")
            if signed_in and not hidden:
                break  # locked again before the booking showed: sign in once more
            signed_in = signed_in or hidden
            await page.wait_for_timeout(100)
        else:
            raise AssertionError(f"{panel} never showed after signing in (signed in: {signed_in})")
    raise AssertionError(f"{panel} never showed after signing in again")


#: Words of the station's English sentences that a Spanish page must not show.
ENGLISH = re.compile(r"\b(the|take|press|finger|glass|slap|passed|below|again|hold|still)\b",
                     re.IGNORECASE)


async def take_current(page: Page, camera: Camera | None, step: str, *,
                       spanish: bool = False) -> None:
    """Capture the step on screen and accept it, with a reason when the gate asks for one."""
    await page.click("#capture")
    await page.wait_for_selector("#retake:not([hidden])")
    await expect(page.locator("#verdict")).to_be_visible()
    if spanish:  # the verdict, the advice and the scores all in the page's language
        verdict = await page.inner_text("#verdict")
        assert not ENGLISH.search(verdict), verdict
    if camera:
        await camera.shot(f"{step}-captured")
    await fits(page, *STEP_CONTROLS)
    if await page.is_visible("#accept-override"):
        await page.click("#accept-override")
        await page.check("input[name=ask-reason] >> nth=0")
        await page.click("#ask-ok")
    else:
        await page.click("#accept")
    await page.wait_for_selector("#retake", state="hidden")


async def submit_and_wait_held(page: Page, number: str, held_words: str) -> None:
    await page.click("#submit")
    # the sequence check may ask: the officer looked at the prints and submits anyway
    start = page.locator("#start-panel:not([hidden])")
    ask = page.locator("#ask[open]")
    await expect(start.or_(ask)).to_be_visible()
    if await ask.is_visible():
        await page.click("#ask-ok")
    await start.wait_for()
    row = page.locator("#bookings tbody tr", has_text=number)
    await row.locator("td.state-stored").wait_for(timeout=180_000)
    assert held_words in await row.inner_text()


@pytest.mark.timeout(1200)  # thirteen prints checked by NFIQ 2 on a shared, loaded machine
async def test_a_whole_ten_print_booking_at_1280x800(station_rig, browser, tmp_path  # noqa: F811
                                                      ) -> None:
    # the subject rolls the right middle where the right index is asked for, and back
    rig = await station_rig(capture={"auto_capture": False}, sharing=SHARING,
                            scanner={"faults": {"swap_positions": [[2, 3]]}})
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(120_000)
    camera = Camera(page, artifacts(tmp_path), "tenprint-1280x800")
    await page.goto(f"http://127.0.0.1:{rig.station.web_port}/")
    await camera.shot("sign-in")
    await no_serious_violations(page)
    await sign_in(page)
    await page.fill("#booking-number", "BK-2026-0099")
    await expect(page.locator("#start")).to_have_text("Start booking")
    await camera.shot("booking-number")
    await no_serious_violations(page)
    await page.click("#start")
    await page.wait_for_selector("#capture-panel:not([hidden])")
    await expect(page.locator("#preview")).to_have_attribute("src", re.compile("^blob:"))
    await camera.shot("first-step")
    await fits(page, *STEP_CONTROLS)
    await no_serious_violations(page)

    # the left little finger is amputated: marked on the diagram, confirmed on the page
    await page.click("#pos-10")
    await camera.shot("finger-dialog")
    await no_serious_violations(page)
    await page.click("#finger-xx")
    await expect(page.locator("#ask-text")).to_contain_text("left little")
    await page.click("#ask-ok")
    await expect(page.locator("#pos-10")).to_have_class(re.compile("marked"))
    await camera.shot("marked-xx")

    session = rig.station.booking
    taken = 0
    while await page.is_visible("#capture"):
        position = session.current_step.position
        await take_current(page, camera if taken < 3 else None, f"{int(position):02d}")
        taken += 1
        if position is Position.PLAIN_RIGHT_FOUR:
            # accepted, then taken again: tapped on the diagram
            await page.click("#pos-13")
            await page.click("#finger-redo")
            await expect(page.locator("#prompt")).to_contain_text("again")
            await camera.shot("retake-after-accept")
            await take_current(page, camera, "13-again")
    assert taken == 12  # three slaps and nine rolled prints (the XX finger skipped)
    await page.wait_for_selector("#review-panel:not([hidden])")
    await expect(page.locator("#thumbs figure")).to_have_count(13)
    await expect(page.locator("#sharing-list")).to_contain_text("State AFIS")
    await expect(page.locator("#sharing-list")).to_contain_text("chosen by the agency")
    await expect(page.locator("#thumbs")).to_contain_text("amputated (XX)")
    # the sequence check's suspects: the two prints side by side, either retaken in one tap
    pair = page.locator("#pair-2-3")
    await expect(pair).to_contain_text("right index", timeout=120_000)  # the check runs first
    await expect(pair).to_contain_text("right middle")
    await expect(page.locator("#pairs .pair")).to_have_count(1)
    await expect(page.locator("#thumbs .thumb.suspect")).to_have_count(2)
    await camera.shot("review")
    await fits(page, "#submit", "#review-cancel", "#pair-redo-2", "#pair-redo-3")
    await no_serious_violations(page)
    await page.click("#pair-redo-3")
    await expect(page.locator("#prompt")).to_contain_text("right middle")
    await take_current(page, None, "03-again")
    await page.wait_for_selector("#review-panel:not([hidden])")
    await expect(pair).to_be_visible(timeout=120_000)  # this subject swaps again: the officer
    # will insist
    # the subject's details, typed once on the form the profile generates
    await page.click("#subject-edit")
    await page.fill("#subject-NAM", "DOE JOHN")
    await expect(page.locator("#subject-NAM-problem")).to_contain_text("comma")
    await page.fill("#subject-NAM", "DOE,JOHN")
    await page.fill("#subject-DOB", "19800131")
    await page.select_option("#subject-SEX", "M")
    await expect(page.locator("#subject-NAM-problem")).to_be_empty()
    await camera.shot("subject-form")
    await no_serious_violations(page)
    await page.click("#subject-save")
    await expect(page.locator("#subject-text")).to_contain_text("DOE,JOHN")
    booking = session.booking
    assert (booking.subject.last_name, booking.subject.sex) == ("DOE", "M")
    assert booking.annotations == {Position.LEFT_LITTLE: Annotation.AMPUTATED}
    [right_four] = [i for i in booking.impressions if i.position is Position.PLAIN_RIGHT_FOUR]
    assert right_four.retakes >= 1
    await submit_and_wait_held(page, "BK-2026-0099", "held by central")
    await camera.shot("held-by-central")
    entries = rig.station.store.audit_entries(200)
    officer_actions = [e for e in entries if e["action"] in
                       ("booking_started", "capture", "annotation", "booking_committed")]
    assert officer_actions and {e["actor"] for e in officer_actions} == {f"officer:{OFFICER}"}


@pytest.mark.timeout(900)
async def test_a_short_booking_at_800x480_in_spanish_with_the_idle_lock(
        station_rig, browser, tmp_path) -> None:  # noqa: F811
    lookup = tmp_path / "lookup"
    lookup.mkdir()
    (lookup / "BK-ES-7.json").write_text('{"NAM": "GARCIA,ANA", "DOB": "19900215", "SEX": "F"}')
    rig = await station_rig(capture={"sequence": "flats", "auto_capture": False,
                                     "subject_lookup_dir": str(lookup)},
                            records={"profile": "local-flats"}, web={"kiosk_idle_lock_s": 15})
    page = await browser.new_page(viewport={"width": 800, "height": 480})
    page.set_default_timeout(120_000)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda m: page_errors.append(m.text) if m.type == "error" else None)
    camera = Camera(page, artifacts(tmp_path), "flats-800x480-es")
    await page.goto(f"http://127.0.0.1:{rig.station.web_port}/")
    await page.click("#language")
    await expect(page.locator("#signin-title")).to_have_text("Acceso del agente")
    await camera.shot("acceso")
    await no_serious_violations(page)
    await sign_in(page)
    # a number the transaction cannot carry is refused as typed, in the page's language
    await page.fill("#booking-number", "BK-Ñ7")
    problems = page.locator("#number-problems")
    await expect(problems).to_contain_text("Solo se pueden enviar letras A-Z")
    assert not ENGLISH.search(await problems.inner_text()), await problems.inner_text()
    await page.click("#language")  # in English, the station's own words; and back
    await expect(problems).to_contain_text("Only letters A-Z, digits, spaces and ASCII signs")
    await page.click("#language")
    await expect(problems).to_contain_text("Solo se pueden enviar letras A-Z")
    await page.fill("#booking-number", "")
    # typed on the on-screen keyboard, as on the kiosk's touch screen
    await page.click("#booking-number")
    await expect(page.locator("#keyboard")).to_be_visible()
    for key in "BK-ES-7":
        await page.click(f"#keyboard [data-skbtn='{key}']")
    await expect(page.locator("#booking-number")).to_have_value("BK-ES-7")
    await camera.shot("teclado")
    await page.click("#keyboard [data-skbtn='{enter}']")
    await expect(page.locator("#keyboard")).to_be_hidden()
    await page.click("#start")
    await page.wait_for_selector("#capture-panel:not([hidden])")
    await expect(page.locator("#prompt")).to_contain_text("mano derecha")
    # standing banners: central is connected here, and the clock's line follows the kernel's
    await expect(page.locator("#banner p.know", has_text="central")).to_have_count(0)
    clock_line = page.locator("#banner p.know", has_text="reloj no es fiable")
    if kernel_clock_state() is ClockTrust.UNSYNCHRONISED:
        await expect(clock_line).to_be_visible()
    else:
        await expect(clock_line).to_have_count(0)
    await camera.shot("primer-paso")
    live = page.locator("#live")  # the live checks' advice, in Spanish too
    for _ in range(30):  # the officer touches the screen while the first preview comes (lock: 15 s)
        if await live.inner_text():
            break
        await page.click("#prompt")
        await page.wait_for_timeout(2000)
    await expect(live).not_to_be_empty(timeout=60_000)
    assert not ENGLISH.search(await live.inner_text()), await live.inner_text()
    await fits(page, *STEP_CONTROLS)
    await no_serious_violations(page)
    # the subject's details, looked up from the booking system's file
    await page.click("#subject-open")
    await page.click("#subject-lookup")
    await expect(page.locator("#subject-NAM")).to_have_value("GARCIA,ANA")
    # the form's labels, code words and problems are the page's language too
    await expect(page.locator("label[for='subject-NAM']")).to_have_text(
        re.compile(r"^Nombre \(apellido, nombre\)"))
    await expect(page.locator("#subject-SEX option[value='F']")).to_have_text("F – femenino")
    await page.fill("#subject-DOB", "19801332")
    await expect(page.locator("#subject-DOB-problem")).to_have_text("Esa fecha no existe.")
    await page.fill("#subject-DOB", "19900215")
    await expect(page.locator("#subject-DOB-problem")).to_have_text("")
    await camera.shot("datos-buscados")
    await page.click("#subject-save")
    await expect(page.locator("#subject")).to_be_hidden()
    assert rig.station.booking.booking.subject.first_name == "ANA"
    await take_current(page, camera, "13", spanish=True)

    # nobody touches the screen: it locks, and the booking waits
    await page.wait_for_selector("#signin-panel:not([hidden])", timeout=120_000)
    await expect(page.locator("#signin-title")).to_have_text("Pantalla bloqueada")
    assert await page.is_hidden("#capture-panel")
    await camera.shot("bloqueada")
    assert rig.station.booking.booking is not None
    # the officer types; meanwhile the page's own background check finds the lock again, and
    # what was typed stays (an emptied, required PIN once stopped the sign-in without a word)
    await page.fill("#officer-id", OFFICER)
    await page.fill("#officer-pin", PIN)
    await page.evaluate("checkSession()")
    await expect(page.locator("#officer-pin")).to_have_value(PIN)
    try:
        await sign_in_again(page, "#capture-panel")
    except Exception:
        await camera.shot("after-sign-in")
        print("page errors:", page_errors)
        raise
    await expect(page.locator("#pos-13")).to_have_class(re.compile("score-"))
    await expect(page.locator("#prompt")).to_contain_text("mano izquierda")
    while await page.is_visible("#capture"):
        await take_current(page, camera, "sigue", spanish=True)
    await page.wait_for_selector("#review-panel:not([hidden])")
    await expect(page.locator("#review-panel h2")).to_have_text("Revisar y enviar")
    await camera.shot("revisar")
    await fits(page, "#submit", "#review-cancel")
    await no_serious_violations(page)
    await submit_and_wait_held(page, "BK-ES-7", "en poder de la central")
    await camera.shot("en-poder-de-la-central")
