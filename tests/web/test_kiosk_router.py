"""The kiosk's routes over the booking service, through the ASGI app (no browser)."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets

from appliance.system.health import below_floor
from appliance.web.config import WebSection
from tests.web.conftest import OFFICER, PIN, services_for, serving, sign_in


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_station_without_its_store_says_why(client_for) -> None:
    client = client_for(services_for(None, problem="store unavailable: disk I/O error"))
    await sign_in(client)
    state = (await client.get("/api/kiosk")).json()
    assert state["state"] == "unavailable" and state["problem"].startswith("store unavailable")
    refused = await client.post("/api/booking", json={"booking_number": "BK-1"})
    assert refused.status_code == 503 and "disk I/O error" in refused.json()["detail"]
    assert (await client.get("/api/health")).json() == {"ok": False, "scanner": "absent"}


async def test_the_booking_actions_over_http(booking_factory, client_for) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    await sign_in(client)
    started = await client.post("/api/booking", json={"booking_number": "BK-300"})
    assert started.status_code == 200 and started.json()["booking_id"] == booking.booking.booking_id
    captured = (await client.post("/api/capture")).json()
    assert captured["position"] == 13 and captured["width"] > 0
    image = await client.get("/api/pending.jpg")
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store" and image.content[:2] == b"\xff\xd8"
    state = (await client.get("/api/kiosk")).json()
    assert state["state"] == "review" and state["pending"]["position"] == 13
    assert state["pending"]["quality"]["nfiq2"] is not None
    assert (await client.post("/api/accept", json={})).json() == {"accepted": 13}
    marked = await client.post("/api/annotate", json={"position": 14, "annotation": "UP"})
    assert marked.status_code == 200
    steps = {s["position"]: s["state"] for s in (await client.get("/api/kiosk")).json()["steps"]}
    assert steps == {13: "accepted", 14: "annotated", 15: "current"}
    assert (await client.post("/api/cancel")).json() == {"ok": True}
    assert (await client.get("/api/kiosk")).json()["booking"] is None


async def test_errors_become_plain_answers(booking_factory, client_for) -> None:
    booking = await booking_factory(faults={"unplug_after_captures": 0})
    client = client_for(services_for(booking))
    await sign_in(client)
    refused = await client.post("/api/capture")
    assert refused.status_code == 409 and "start a booking first" in refused.json()["error"]
    assert (await client.post("/api/booking", json={"booking_number": ""})).status_code == 422
    assert (await client.post("/api/annotate", json={"position": 99,
                                                     "annotation": "XX"})).status_code == 422
    assert (await client.get("/api/pending.jpg")).status_code == 404
    await client.post("/api/booking", json={"booking_number": "BK-301"})
    unplugged = await client.post("/api/capture")
    assert unplugged.status_code == 503
    assert unplugged.json()["error"].startswith("scanner problem: ")
    assert (await client.get("/static/..%2fapp.py")).status_code == 404
    assert (await client.get("/static/kiosk.js")).status_code == 200


async def test_the_preview_websocket_carries_frames_then_verdicts(booking_factory) -> None:
    booking = await booking_factory()
    await booking.start("BK-302")
    async with serving(services_for(booking)) as port:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers={"Origin": base},
                                     timeout=120) as client:
            await sign_in(client)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/preview", origin=base,
                                      additional_headers={"Cookie": cookie}) as ws:
            frame = await ws.recv()
            while not isinstance(frame, bytes):  # an idle message while the step settles
                assert json.loads(frame)["type"] == "idle"
                frame = await ws.recv()
            assert frame[:2] == b"\xff\xd8"
            verdict = json.loads(await ws.recv())
            assert verdict.keys() == {"type", "ok", "reasons", "message", "steady", "needed",
                                      "codes", "message_code", "boxes", "aspect",
                                      "rolled_mm", "roll_target_mm", "captured_at"}
            assert verdict["type"] == "live" and len(verdict["codes"]) == len(verdict["reasons"])
            assert verdict["aspect"] > 0 and all(
                len(box) == 4 and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
                for box in verdict["boxes"])
            assert verdict["message_code"]  # the page words the advice in its own language


async def test_every_kiosk_route_needs_the_signed_in_officer(booking_factory, client_for) -> None:
    booking = await booking_factory()
    await booking.start("BK-303")
    await booking.capture()
    client = client_for(services_for(booking))
    for method, path in (("GET", "/api/kiosk"), ("GET", "/api/pending.jpg"),
                         ("POST", "/api/capture"), ("POST", "/api/accept"),
                         ("POST", "/api/retake"), ("POST", "/api/annotate"),
                         ("POST", "/api/submit"), ("POST", "/api/cancel"),
                         ("POST", "/api/booking"), ("POST", "/api/kiosk/activity")):
        answer = await client.request(method, path, json={})
        assert answer.status_code == 401, path
        assert "BK-303" not in answer.text
    assert booking.booking is not None and booking.pending is not None  # nothing was done
    assert (await client.get("/api/kiosk/session")).json()["officer"] is None
    assert (await client.get("/api/health")).status_code == 200  # liveness stays public
    await sign_in(client)
    forged = await client.post("/api/cancel", headers={"X-CSRF-Token": "guessed"})
    assert forged.status_code == 403 and booking.booking is not None
    assert (await client.get("/api/kiosk")).json()["booking"]["booking_number"] == "BK-303"


async def test_wrong_pins_lock_the_officer_out_and_are_audited(booking_factory,
                                                               client_for) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    for _ in range(4):
        wrong = await client.post("/api/kiosk/signin", json={"officer": OFFICER, "pin": "0000"})
        assert wrong.status_code == 401 and "Wrong" in wrong.json()["error"]
    fifth = await client.post("/api/kiosk/signin", json={"officer": OFFICER, "pin": "0000"})
    assert fifth.status_code == 429 and int(fifth.headers["retry-after"]) > 500
    right = await client.post("/api/kiosk/signin", json={"officer": OFFICER, "pin": PIN})
    assert right.status_code == 429  # the right PIN waits out the lock too
    entries = booking.store.audit_entries(50)
    failed = [e for e in entries if e["action"] == "login_failed"]
    assert len(failed) == 5
    assert all(PIN not in json.dumps(e) and "0000" not in json.dumps(e) for e in entries)
    assert any("locked_out_s" in json.dumps(e["detail"]) for e in failed)
    unknown = await client.post("/api/kiosk/signin", json={"officer": "482913", "pin": "1"})
    assert unknown.status_code == 401
    assert "482913" not in json.dumps(booking.store.audit_entries(50))


async def test_the_idle_lock_keeps_the_booking_and_the_audit_names_the_officer(
        booking_factory, client_for) -> None:
    booking = await booking_factory()
    clock = Clock()
    services = services_for(booking)
    services.web = WebSection(kiosk_idle_lock_s=300)
    client = client_for(services, clock=clock)
    await sign_in(client)
    assert (await client.post("/api/booking", json={"booking_number": "BK-304"})).status_code \
        == 200
    await client.post("/api/capture")
    assert (await client.post("/api/accept", json={})).status_code == 200
    clock.now += 200
    await client.get("/api/kiosk")  # the page reading state is not a touch
    await client.post("/api/kiosk/activity")  # a touch is
    clock.now += 200
    assert (await client.get("/api/kiosk")).status_code == 200
    clock.now += 301
    locked = await client.get("/api/kiosk")
    assert locked.status_code == 423 and "BK-304" not in locked.text
    assert (await client.post("/api/capture")).status_code == 423
    assert (await client.get("/api/kiosk/session")).json()["locked"] is True
    await sign_in(client)  # a sign-in again mid-booking
    state = (await client.get("/api/kiosk")).json()
    assert state["booking"]["booking_number"] == "BK-304"
    assert [s["state"] for s in state["steps"]][:2] == ["accepted", "current"]
    await client.post("/api/cancel")
    actors = {e["action"]: e["actor"] for e in booking.store.audit_entries(50)}
    for action in ("login", "booking_started", "capture", "booking_cancelled"):
        assert actors[action] == f"officer:{OFFICER}", action


@pytest.mark.parametrize("path", ["/ws/preview", "/ws/events"])
async def test_a_websocket_without_the_officers_session_gets_nothing(booking_factory,
                                                                     path) -> None:
    booking = await booking_factory()
    await booking.start("BK-305")
    async with serving(services_for(booking)) as port:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{port}{path}",
                                          origin=f"http://127.0.0.1:{port}") as ws:
                await ws.recv()


async def test_the_booking_number_is_checked_as_typed(booking_factory, client_for) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    await sign_in(client)

    async def check(number: str) -> dict:
        answer = await client.post("/api/booking/check", json={"booking_number": number})
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert await check("BK-2026-0042") == {"ok": True, "problems": [], "warnings": [],
                                           "problem_words": [], "warning_words": []}
    accented = await check("BK-Ñ42")
    assert not accented["ok"] and "'Ñ'" in accented["problems"][0]
    # the page words it in its own language from the code and the figures
    assert accented["problem_words"] == [{"code": "number_chars", "params": {"chars": "'Ñ'"}}]
    assert not (await check("B" * 21))["ok"]
    assert not (await check("BK\x1e42"))["ok"]  # a record separator would break the record
    refused = await client.post("/api/booking", json={"booking_number": "BK-Ñ42"})
    assert refused.status_code == 409 and "'Ñ'" in refused.json()["error"]
    assert refused.json()["words"] == {"code": "number_chars", "params": {"chars": "'Ñ'"}}
    assert booking.booking is None  # refused at the start, not after thirteen prints
    await client.post("/api/booking", json={"booking_number": "BK-306"})
    again = await client.post("/api/booking", json={"booking_number": "BK-308"})
    assert again.status_code == 409 and again.json()["words"]["code"] == "in_progress"
    early = await client.post("/api/submit", json={"confirm_sequence": True})
    assert early.status_code == 409 and early.json()["words"] == {
        "code": "not_captured", "params": {"position": int(booking.current_step.position)}}
    while booking.current_step is not None:
        await client.post("/api/capture")
        if (await client.post("/api/accept", json={})).status_code != 200:
            await client.post("/api/accept", json={"override_reason": "test"})
    submitted = await client.post("/api/submit", json={"confirm_sequence": True})
    assert submitted.status_code == 200, submitted.text
    repeat = await check("BK-306")
    assert repeat["ok"] and "BK-306 was already booked today" in repeat["warnings"][0]
    words = repeat["warning_words"][0]
    assert words["code"] == "number_repeat_today" and words["params"]["number"] == "BK-306"
    assert words["params"]["state"] in {"queued", "sending", "stored"}
    assert (await check("BK-307"))["warnings"] == []


async def test_notices_reach_the_officers_view(booking_factory, client_for) -> None:
    """What the officer should know (a disk nearly full, say) is in every view of the screen."""
    booking = await booking_factory()
    services = services_for(booking)
    said: list[str] = []
    services.notices = lambda: list(said)
    client = client_for(services)
    await sign_in(client)
    assert (await client.get("/api/kiosk")).json()["notices"] == []
    said.append(below_floor(40, 64))
    said.append("a notice without a code")
    state = (await client.get("/api/kiosk")).json()
    assert state["notices"] == said and state["problem"] is None
    # the page words the disk's notice in its language from the code and figures
    assert state["notice_words"] == [
        {"code": "disk_below_floor", "params": {"need": 24, "floor": 64}},
        {"code": "", "params": {}}]
    started = await client.post("/api/booking", json={"booking_number": "BK-301"})
    assert started.status_code == 200  # a notice refuses nothing by itself
