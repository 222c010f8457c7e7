"""Signing in to the technician page from a test, and walking its routes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from appliance.capture.booking import BookingService
from appliance.config import StationConfig
from appliance.domain import Subject
from appliance.reconfigure import Reconfigurer
from appliance.web.auth import hash_password, hash_pbkdf2

#: Where the route walkers put a value in a path parameter.
PATH_VALUES = {"action": "pause"}


async def sign_in(client: httpx.AsyncClient, user: str, password: str) -> dict[str, str]:
    """Sign in; returns the header that carries the CSRF token on changes."""
    answer = await client.post("/api/admin/login", json={"user": user, "password": password})
    assert answer.status_code == 200, answer.text
    return {"X-CSRF-Token": answer.json()["csrf"]}


def add_logins(creds: Path, *lines: str) -> None:
    """Append ``name:role:hash`` lines to the demo's logins credential."""
    path = creds / "booking-station-admin-users"
    with path.open("a") as fh:
        for line in lines:
            fh.write(line + "\n")


def auditor_line(name: str, password: str) -> str:
    return f"{name}:auditor:{hash_password(password)}"


def pbkdf2_line(name: str, password: str) -> str:
    return f"{name}:technician:{hash_pbkdf2(password, iterations=1000)}"


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every technician-page route of ``app`` as (method, concrete path)."""
    out = []
    for template, methods in _flat_routes(app.routes):
        if not (template.startswith(("/api/admin", "/admin")) or template == "/openapi.json"):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), template)
        for method in sorted(set(methods) - {"HEAD"}):
            out.append((method, path))
    return sorted(set(out))


def _flat_routes(routes: list[Any]) -> list[tuple[str, set[str]]]:
    """Path templates and methods, through routers that FastAPI includes lazily."""
    out: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append((route.path, set(route.methods)))
        elif hasattr(route, "effective_candidates"):  # no prefixes are used by the routers
            out += _flat_routes(list(route.effective_candidates()))
        elif hasattr(route, "path") and hasattr(route, "methods"):
            out.append((route.path, set(route.methods or ())))
    return out


async def a_finished_booking(booking: BookingService, number: str, subject: Subject) -> str:
    """A flats booking captured and committed; returns its booking id."""
    started = await booking.start(number, subject)
    while booking.current_step is not None:
        await booking.capture()
        await booking.accept()
    await booking.submit()
    return started.booking_id


def memory_configuration(audit: Callable[..., Awaitable[Any]]) -> Reconfigurer:
    """A reconfigurer over a config held in memory, whose restarts always succeed."""
    holder = [StationConfig.model_validate({"station": {"station_id": "web-1"}})]

    async def restart(config: StationConfig, _sections: set[str]) -> None:
        holder[0] = config

    return Reconfigurer(running=lambda: holder[0], path=None, restart=restart,
                        healthy=lambda _sections: (True, ""), audit=audit, timeout_s=1.0,
                        check_machine=False)
