"""The locks in front of every route, each tried as the attack itself against a served app."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.web.conftest import services_for, serving


@pytest.fixture
async def station(booking_factory):
    booking = await booking_factory()
    async with serving(services_for(booking)) as port:
        yield booking, port


async def test_a_foreign_host_is_refused(station) -> None:
    _booking, port = station
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/api/kiosk")).status_code == 200
        for host in ("evil.example", "evil.example:80", f"rebind.example:{port}", "", "[::1"):
            answer = await client.get("/api/kiosk", headers={"Host": host})
            assert answer.status_code == 400, host
            assert "booking" not in answer.text


async def test_a_cross_origin_post_is_refused(station) -> None:
    booking, port = station
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for origin in (None, "http://evil.example", "null", f"http://evil.example:{port}"):
            headers = {"Origin": origin} if origin else {}
            answer = await client.post("/api/booking", json={"booking_number": "BK-X"},
                                       headers=headers)
            assert answer.status_code == 403, origin
        assert booking.booking is None  # nothing was started
        own = await client.post("/api/booking", json={"booking_number": "BK-OWN"},
                                headers={"Origin": f"http://localhost:{port}"})
        assert own.status_code == 200


async def test_a_websocket_from_another_origin_gets_nothing(station) -> None:
    booking, port = station
    await booking.start("BK-WS")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/preview",
                                      origin="http://evil.example"):
            pass
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/preview",
                                  origin=f"http://127.0.0.1:{port}") as ws:
        assert await asyncio.wait_for(ws.recv(), 60)


async def test_bodies_are_bounded(station) -> None:
    booking, port = station
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    big = json.dumps({"booking_number": "x" * (65 * 1024)}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=origin) as client:
        declared = await client.post("/api/booking", content=big,
                                     headers={"Content-Type": "application/json"})
        assert declared.status_code == 413

        async def stream():
            for _ in range(200):
                yield b" " * 4096

        streamed = await client.post("/api/booking", content=stream(),
                                     headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
    assert booking.booking is None


async def test_every_answer_carries_the_security_headers(station) -> None:
    _booking, port = station
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for path in ("/", "/api/kiosk", "/static/kiosk.js", "/nothing-here"):
            answer = await client.get(path)
            csp = answer.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/api/kiosk")).headers["cache-control"] == "no-store"


async def test_malformed_paths_are_not_server_errors(station) -> None:
    _booking, port = station
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for path in ("/static/%00", "/static/" + "a" * 5000, "/static/..%2f..%2fetc%2fpasswd",
                     "/static/.hidden", "/static/%ff%fe"):
            assert (await client.get(path)).status_code == 404, path
