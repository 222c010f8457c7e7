"""The technician page's configuration view: the running config, a checked change, apply.

The station's composition root does the work (``Services.configuration``); this router only
bounds the request and names the technician in the audit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from appliance.web.desk import SIGNED_IN, Desk, unavailable
from appliance.web.services import Configuration, Services
from appliance.web.sessions import Session


class Change(BaseModel):
    """A TOML fragment merged into the config file (``[mqtt]`` ``port = 8883``)."""

    model_config = ConfigDict(extra="forbid")
    change: str = Field(min_length=1, max_length=16 * 1024)


class Problem(BaseModel):
    """One problem of a change, with its dotted key."""

    path: str
    message: str


class Checked(BaseModel):
    """What checking a change found."""

    ok: bool
    problems: list[Problem]
    diff: list[dict[str, Any]]
    restarts: list[str]


class Applied(Checked):
    """What applying a change did."""

    applied: bool
    rolled_back: bool
    reason: str = ""


def router(services: Services, desk: Desk) -> APIRouter:
    """Configuration routes."""
    api = APIRouter()
    missing = unavailable("Configuration")

    def configuration() -> Configuration:
        if services.configuration is None:
            raise HTTPException(503, "this station cannot be reconfigured from the page")
        return services.configuration

    @api.get("/api/admin/config", responses={**SIGNED_IN, **missing})
    async def running_config(_s: Session = desk.technician) -> dict[str, Any]:
        """The running configuration, secrets redacted."""
        return configuration().running()

    @api.post("/api/admin/config/check", responses={**SIGNED_IN, **missing})
    async def check_change(body: Change, _s: Session = desk.technician) -> Checked:
        """Check a change as check-config would, without applying it."""
        proposal = await asyncio.to_thread(configuration().propose, body.change)
        return Checked(**proposal.as_dict())

    @api.post("/api/admin/config/apply", responses={**SIGNED_IN, **missing})
    async def apply_change(body: Change, session: Session = desk.technician) -> Applied:
        """Apply a change; it rolls back by itself if the station is not healthy in time."""
        done = await configuration().apply(body.change, f"technician:{session.user}")
        return Applied(**done)

    return api
