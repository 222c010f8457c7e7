"""The kiosk's routes over the booking service, through the ASGI app (no browser)."""

from __future__ import annotations

import json

import websockets

from tests.web.conftest import services_for, serving


async def test_a_station_without_its_store_says_why(client_for) -> None:
    client = client_for(services_for(None, problem="store unavailable: disk I/O error"))
    state = (await client.get("/api/kiosk")).json()
    assert state["state"] == "unavailable" and state["problem"].startswith("store unavailable")
    refused = await client.post("/api/booking", json={"booking_number": "BK-1"})
    assert refused.status_code == 503 and "disk I/O error" in refused.json()["detail"]
    assert (await client.get("/api/health")).json() == {"ok": False, "scanner": "absent"}


async def test_the_booking_actions_over_http(booking_factory, client_for) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
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
    async with serving(services_for(booking)) as port, \
            websockets.connect(f"ws://127.0.0.1:{port}/ws/preview",
                               origin=f"http://127.0.0.1:{port}") as ws:
        frame = await ws.recv()
        while not isinstance(frame, bytes):  # an "idle" while the step settles
            frame = await ws.recv()
        assert frame[:2] == b"\xff\xd8"
        verdict = json.loads(await ws.recv())
        assert set(verdict["live"]) == {"ok", "reasons", "message"}
