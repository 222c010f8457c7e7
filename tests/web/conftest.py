"""The web routers over real services: the booking service on the emulated scanner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn

from appliance.capture.booking import BookingService
from appliance.capture.preview import PreviewLoop
from appliance.system.config import StationSection
from appliance.system.events import Events
from appliance.system.health import HealthService, HealthSources
from appliance.web.app import create_app
from appliance.web.config import WebSection
from appliance.web.services import Services
from demo.run import prepare_officer, prepare_state
from tests.capture.conftest import booking_factory, processor

__all__ = ["booking_factory", "processor"]

#: The officer every web test signs in as.
OFFICER, PIN = "officer1", "246810"


def officer_credentials(creds: Path) -> None:
    """The officers' credential with :data:`OFFICER`'s PIN, as the install writes it."""
    creds.mkdir(parents=True, exist_ok=True)
    creds.chmod(0o700)
    prepare_officer(creds, OFFICER, PIN)


async def sign_in(client: httpx.AsyncClient, officer: str = OFFICER, pin: str = PIN) -> str:
    """Sign ``client`` in at the kiosk; its later requests carry the session's CSRF token."""
    answer = await client.post("/api/kiosk/signin", json={"officer": officer, "pin": pin})
    assert answer.status_code == 200, answer.text
    csrf = answer.json()["csrf"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


@pytest.fixture(autouse=True)
def officers(tmp_path: Path, monkeypatch) -> Path:
    """Every web test has the officers' credential; a test may add a technician beside it."""
    creds = tmp_path / "state" / "credentials"
    officer_credentials(creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    return creds


def services_for(booking: BookingService | None, *, problem: str | None = None) -> Services:
    def store_figures():
        return booking.store.health() if booking else None

    health = HealthService("web-1", 1, HealthSources(
        store=store_figures, scanner_state=lambda: booking.scanner_state if booking else "absent",
        clock=lambda: "synchronised", link_connects=lambda: 0,
        problems=lambda: [problem] if problem else []))
    return Services(
        station=StationSection(station_id="web-1"), web=WebSection(), health=health,
        events=booking.events if booking else Events(), booking=booking,
        preview=(lambda: PreviewLoop(booking, fps=15, auto_capture=False, auto_frames=3))
        if booking else None,
        store=booking.store if booking else None, problem=lambda: problem,
        scanner=lambda: {"state": booking.scanner_state if booking else "absent"},
    )


@pytest.fixture
def technician(tmp_path: Path, monkeypatch) -> tuple[str, str]:
    creds, password = prepare_state(tmp_path / "state")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert password is not None
    return "tech", password


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Services], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(services: Services, **app_options) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_app(services, **app_options))
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                   headers={"Origin": "http://127.0.0.1"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[int]:
    """The app on a real socket (for websockets); yields the port."""
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_config=None,
                            lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(60):
        while not server.started:
            await asyncio.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
