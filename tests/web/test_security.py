"""The locks in front of every route, each tried as the attack itself against a served app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.web.conftest import services_for, serving, sign_in


@pytest.fixture
async def station(booking_factory):
    booking = await booking_factory()
    async with serving(services_for(booking)) as port:
        yield booking, port


@contextlib.asynccontextmanager
async def officer_client(port: int) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client signed in at the kiosk as the officer."""
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}, timeout=120) as client:
        await sign_in(client)
        yield client


def cookie_of(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}


async def test_a_foreign_host_is_refused(station) -> None:
    _booking, port = station
    async with officer_client(port) as client:
        assert (await client.get("/api/kiosk")).status_code == 200
        for host in ("evil.example", "evil.example:80", f"rebind.example:{port}", "", "[::1"):
            answer = await client.get("/api/kiosk", headers={"Host": host})
            assert answer.status_code == 400, host
            assert "booking" not in answer.text


async def test_a_cross_origin_post_is_refused(station) -> None:
    booking, port = station
    async with officer_client(port) as client:  # even with the officer's cookie and token
        for origin in (None, "http://evil.example", "null", f"http://evil.example:{port}"):
            client.headers.pop("Origin", None)
            headers = {"Origin": origin} if origin else {}
            answer = await client.post("/api/booking", json={"booking_number": "BK-X"},
                                       headers=headers)
            assert answer.status_code == 403, origin
        assert booking.booking is None  # nothing was started
        own = await client.post("/api/booking", json={"booking_number": "BK-OWN"},
                                headers={"Origin": f"http://localhost:{port}"})
        assert own.status_code == 200


async def test_a_form_post_without_the_session_is_refused(station) -> None:
    booking, port = station
    await booking.start("BK-FORM")
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=origin) as client:
        for path in ("/api/cancel", "/api/capture", "/api/submit"):
            answer = await client.post(path, data={"x": "1"})
            assert answer.status_code == 401, path
        pending = await client.get("/api/pending.jpg")
        assert pending.status_code == 401 and pending.content[:2] != b"\xff\xd8"
        listing = await client.get("/api/kiosk")
        assert listing.status_code == 401 and "BK-FORM" not in listing.text
    assert booking.booking is not None and booking.booking.booking_number == "BK-FORM"


async def test_a_second_preview_client_never_starves_the_officers(station) -> None:
    booking, port = station
    await booking.start("BK-VIEW")
    url, origin = f"ws://127.0.0.1:{port}/ws/preview", f"http://127.0.0.1:{port}"
    async with officer_client(port) as officer, websockets.connect(url, origin=origin,
                                           additional_headers=cookie_of(officer)) as mine:
        frames = 0
        while frames < 3:
            frames += isinstance(await asyncio.wait_for(mine.recv(), 60), bytes)
        for rogue_origin in (origin, "http://evil.example"):  # no session: refused at once
            with pytest.raises(websockets.exceptions.InvalidStatus):
                async with websockets.connect(url, origin=rogue_origin) as rogue:
                    await rogue.recv()
        later = 0
        while later < 3:  # the officer's preview kept flowing
            later += isinstance(await asyncio.wait_for(mine.recv(), 60), bytes)
        # the officer's own page reloaded: the newer connection takes over, the old one ends
        async with websockets.connect(url, origin=origin,
                                      additional_headers=cookie_of(officer)) as reloaded:
            got = await asyncio.wait_for(reloaded.recv(), 60)
            assert got
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(mine.recv(), 60)
            assert mine.close_code == 4409


async def test_a_websocket_from_another_origin_gets_nothing(station) -> None:
    booking, port = station
    await booking.start("BK-WS")
    async with officer_client(port) as officer:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/preview",
                                          origin="http://evil.example",
                                          additional_headers=cookie_of(officer)):
                pass
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/preview",
                                      origin=f"http://127.0.0.1:{port}",
                                      additional_headers=cookie_of(officer)) as ws:
            assert await asyncio.wait_for(ws.recv(), 60)


async def test_bodies_are_bounded(station) -> None:
    booking, port = station
    big = json.dumps({"booking_number": "x" * (65 * 1024)}).encode()
    async with officer_client(port) as client:
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
    async with officer_client(port) as client:
        assert (await client.get("/api/kiosk")).headers["cache-control"] == "no-store"


async def test_malformed_paths_are_not_server_errors(station) -> None:
    _booking, port = station
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for path in ("/static/%00", "/static/" + "a" * 5000, "/static/..%2f..%2fetc%2fpasswd",
                     "/static/.hidden", "/static/%ff%fe"):
            assert (await client.get(path)).status_code == 404, path
