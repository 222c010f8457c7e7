"""The technician's page: sign-in and sign-out, health, sync controls, the API description.

Never a print, a booking number or a subject's details: the technician looks after the
station, not the bookings. Every route but the sign-in names the role it needs; the audit and
outbox views live in ``admin_audit``.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from appliance.system.grades import Facts, grade, worst
from appliance.web import (
    admin_audit,
    admin_charts,
    admin_config,
    admin_diagnostics,
    admin_scanner,
)
from appliance.web.desk import SIGNED_IN, Desk, Problem, client_address
from appliance.web.services import Services
from appliance.web.sessions import Role, Session
from appliance.web.signin import NoAccounts, SignInBusy, SignInFailed, SignInLocked

STATIC = Path(__file__).parent / "static"


@functools.cache
def software_version() -> str:
    """The installed booking-station release, read once.

    The running code's own release (an upgrade restarts the service); reading the package
    metadata parses it, a few ms of CPU each time.
    """
    try:
        return metadata.version("booking-station")
    except metadata.PackageNotFoundError:
        return "unknown"


class Credentials(BaseModel):
    """What the sign-in form sends."""

    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionView(BaseModel):
    """Who is signed in, with the CSRF token the page sends back on every change."""

    user: str
    role: Role
    csrf: str
    idle_timeout_s: int
    expires_in_s: int


class SyncState(BaseModel):
    """The outbox drain after a sync control."""

    paused: bool


def router(services: Services) -> APIRouter:
    """The technician's routes."""
    api = APIRouter()
    desk = Desk(services, secure=services.web.technician_tls is not None)
    signin = desk.signin

    def session_view(session: Session) -> SessionView:
        return SessionView(user=session.user, role=session.role, csrf=session.csrf,
                           idle_timeout_s=int(signin.sessions.idle_s),
                           expires_in_s=int(signin.sessions.remaining_s(session)))

    @api.get("/admin", include_in_schema=False, response_model=None)
    async def admin_page(request: Request) -> Response:
        if signin.sessions.find(request, touch=False) is None:
            return RedirectResponse("/admin/login", status_code=303)
        return FileResponse(STATIC / "admin.html")

    @api.get("/admin/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(STATIC / "admin-login.html")

    @api.post("/api/admin/login", responses={
        401: {"model": Problem, "description": "Wrong name or password."},
        429: {"model": Problem, "description": "Locked after too many failures, or too many "
              "sign-ins waiting for their check."},
        503: {"model": Problem, "description": "No technician accounts are configured."},
    })
    async def login(body: Credentials, request: Request, response: Response) -> SessionView:
        """Sign in; the answer sets the session cookie and carries the CSRF token."""
        old = signin.sessions.find(request, touch=False)
        if old is not None:
            signin.sessions.end(old)
        try:
            session = await signin.sign_in(body.user, body.password, client_address(request))
        except SignInBusy as exc:
            raise HTTPException(429, "the station is busy checking sign-ins: try again shortly",
                                headers={"Retry-After": "5"}) from exc
        except SignInLocked as exc:
            raise HTTPException(429, "too many failed sign-ins: try again later",
                                headers={"Retry-After": str(exc.retry_after_s)}) from exc
        except SignInFailed as exc:
            raise HTTPException(401, "wrong name or password") from exc
        except NoAccounts as exc:
            raise HTTPException(503, "no technician accounts are configured") from exc
        signin.sessions.set_cookie(response, session)
        return session_view(session)

    @api.post("/api/admin/logout", responses=SIGNED_IN, status_code=204)
    async def logout(request: Request, session: Session = desk.reader) -> Response:
        """Sign out: the session ends on the station and the cookie is cleared."""
        await signin.sign_out(session, client_address(request))
        response = Response(status_code=204)
        signin.sessions.clear_cookie(response)
        return response

    @api.get("/api/admin/session", responses=SIGNED_IN)
    async def current_session(session: Session = desk.reader) -> SessionView:
        """The signed-in person, their role and the CSRF token."""
        return session_view(session)

    @api.get("/openapi.json", include_in_schema=False, responses=SIGNED_IN)
    async def openapi(request: Request, _s: Session = desk.technician) -> JSONResponse:
        app: FastAPI = request.app
        return JSONResponse(app.openapi())

    @api.get("/api/admin/health", responses=SIGNED_IN)
    async def admin_health(_s: Session = desk.technician) -> dict[str, Any]:
        """Health at a glance, scanner and link counters. No subject data."""
        return await overview()

    async def overview() -> dict[str, Any]:
        health = await asyncio.to_thread(services.health.read)
        sync = services.sync
        facts = Facts(link_connected=bool(sync and sync.link.connected),
                      link_configured=sync is not None,
                      models=dict(services.diagnostics().get("models", {})),
                      software_version=software_version(),
                      min_free_mb=services.health.min_free_mb)
        items = grade(health, facts)
        return {
            "overall": worst(items).value,
            "items": [item.as_dict() for item in items],
            "health": health.as_dict(),
            "scanner": services.scanner(),
            "link": {
                "connected": bool(sync and sync.link.connected),
                "broker": f"{sync.mqtt.host}:{sync.mqtt.port}" if sync else "",
                "connects": sync.link.counters.connects if sync else 0,
                "last_error": sync.link.counters.last_error if sync else "",
                "session_taken_over": sync.link.counters.taken_over if sync else 0,
                "acks_refused": sync.acks_refused if sync else 0,
                "paused": bool(sync and sync.uploader.paused),
                "inflight": sync.uploader.inflight if sync else 0,
            },
            "store_problem": services.problem(),
        }

    @api.post("/api/admin/sync/{action}", responses={
        **SIGNED_IN, 503: {"model": Problem, "description": "Sync is not running."}})
    async def admin_sync(action: Literal["now", "pause", "resume"],
                         session: Session = desk.technician) -> SyncState:
        """Manual sync controls: now, pause, resume."""
        if services.sync is None:
            raise HTTPException(503, "sync is not running")
        up = services.sync.uploader
        {"now": up.wake, "pause": up.pause, "resume": up.resume}[action]()
        if services.store is not None:
            await services.store.audit(f"technician:{session.user}", "remote_command",
                                       {"command": f"sync-{action}", "via": "admin page"})
        return SyncState(paused=up.paused)

    rooms = [admin_audit.router(services, desk), admin_charts.router(services, desk),
             admin_config.router(services, desk), admin_scanner.router(services, desk),
             admin_diagnostics.router(services, desk, overview)]
    endpoint = {route.path: route.endpoint for room in rooms for route in room.routes
                if isinstance(route, APIRoute) and "GET" in route.methods}
    for room in rooms:
        api.include_router(room)

    @api.get("/api/admin/refresh", responses=SIGNED_IN)
    async def refresh(
        limit: int = Query(100, ge=1, le=admin_audit.PAGE_MAX),
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = Query(None, pattern=admin_audit.ACTOR_PATTERN),
        action: admin_audit.AuditAction | None = None,
        outbox_limit: int = Query(50, ge=1, le=admin_audit.PAGE_MAX),
        session: Session = desk.reader,
    ) -> dict[str, Any]:
        """The page's periodic refresh in one answer (one request, not five, every 5 s).

        Everyone: the audit chain checked since its last check (``verify``) and the newest
        audit entries that match (``audit``, as ``/api/admin/audit``). A technician also gets
        ``scanner``, ``health`` and ``outbox``, as their own routes give them (null for a part
        that is not running).
        """
        answer: dict[str, Any] = {
            "verify": await endpoint["/api/admin/audit/verify"](whole=False, _s=session),
            "audit": await endpoint["/api/admin/audit"](
                limit=limit, since=since, until=until, actor=actor, action=action, before=None,
                _s=session),
        }
        if session.role is Role.TECHNICIAN:
            answer["health"] = await overview()
            for name, path, args in (("scanner", "/api/admin/scanner", {}),
                                     ("outbox", "/api/admin/outbox", {"limit": outbox_limit})):
                try:
                    answer[name] = await endpoint[path](**args, _s=session)
                except HTTPException:  # not running (no scanner tools, no store): null
                    answer[name] = None
        return answer  # FastAPI serialises it once, as each route it joins does

    return api
