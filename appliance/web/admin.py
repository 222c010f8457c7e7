"""The technician's pages: health, scanner and link counters, the audit log, sync controls.

Never a print, a booking number or a subject's details: the technician looks after the
station, not the bookings.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse

from appliance.errors import ConfigError
from appliance.system.secrets import read_secret
from appliance.web.auth import parse_users, verify_password
from appliance.web.services import Services

STATIC = Path(__file__).parent / "static"
#: Most audit entries one request returns.
AUDIT_PAGE_MAX = 1000


def router(services: Services) -> APIRouter:
    """The technician's routes, each behind a login."""
    api = APIRouter()

    def technician(request: Request) -> str:
        header = request.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Basic realm="booking-station admin"'}
        if not header.startswith("Basic "):
            raise HTTPException(401, "login required", headers=challenge)
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(401, "bad credentials", headers=challenge) from exc
        try:
            users = parse_users(read_secret(services.web.admin_users_credential).decode())
        except ConfigError as exc:
            raise HTTPException(503, "no technician accounts are configured") from exc
        if not verify_password(password, users.get(user)):
            raise HTTPException(401, "bad credentials", headers=challenge)
        return user

    @api.get("/admin", include_in_schema=False)
    async def admin_page(_user: str = Depends(technician)) -> FileResponse:
        return FileResponse(STATIC / "admin.html")

    @api.get("/api/admin/health")
    async def admin_health(_user: str = Depends(technician)) -> dict[str, Any]:
        """Health at a glance, scanner and link counters. No subject data."""
        health = await asyncio.to_thread(services.health.read)
        store = services.store
        chain = await asyncio.to_thread(store.verify_audit) if store else None
        sync = services.sync
        return {
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
            "audit": {"ok": chain.ok, "entries": chain.entries, "head": chain.head,
                      "first_bad": chain.first_bad_seq} if chain else None,
            "store_problem": services.problem(),
        }

    @api.get("/api/admin/audit")
    async def admin_audit(limit: int = 100, _user: str = Depends(technician)
                          ) -> list[dict[str, Any]]:
        """The newest audit entries (ids, actions, actors; never personal data)."""
        if services.store is None:
            return []
        return await asyncio.to_thread(services.store.audit_entries, min(limit, AUDIT_PAGE_MAX))

    @api.post("/api/admin/sync/{action}")
    async def admin_sync(action: str, user: str = Depends(technician)) -> dict[str, Any]:
        """Manual sync controls: now, pause, resume."""
        if services.sync is None:
            raise HTTPException(503, "sync is not running")
        up = services.sync.uploader
        if action == "now":
            up.wake()
        elif action == "pause":
            up.pause()
        elif action == "resume":
            up.resume()
        else:
            raise HTTPException(404, "unknown sync action")
        if services.store is not None:
            await services.store.audit(f"technician:{user}", "remote_command",
                                       {"command": f"sync-{action}", "via": "admin page"})
        return {"paused": up.paused}

    return api
