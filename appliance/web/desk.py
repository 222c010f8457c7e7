"""What every router of the technician page shares: the sign-in, the roles, the refusals.

Each route names the role it needs through :class:`Desk` (``desk.technician`` for everything,
``desk.reader`` for the audit log, which the auditor may read too) and declares the refusals of
:data:`SIGNED_IN` in its OpenAPI answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import BaseModel

from appliance.web.services import Services
from appliance.web.sessions import Role
from appliance.web.signin import TechnicianSignIn


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


#: The answers every signed-in route may give besides its own.
SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Not signed in, or the session ended."},
    403: {"model": Problem, "description": "The role may not do this, or no CSRF token."},
}


def unavailable(what: str) -> dict[int | str, dict[str, Any]]:
    """The 503 answer of a route whose service may be missing."""
    return {503: {"model": Problem, "description": f"{what} is not running."}}


class Desk:
    """The technician page's sign-in and the role each route needs."""

    def __init__(self, services: Services, *, secure: bool) -> None:
        self.signin = TechnicianSignIn(services.web.admin_users_credential, services.store,
                                       secure=secure)
        sessions = self.signin.sessions
        self.technician = Depends(sessions.require([Role.TECHNICIAN]))
        self.reader = Depends(sessions.require([Role.TECHNICIAN, Role.AUDITOR]))


def client_address(request: Request) -> str:
    """The caller's address, as the lockout counts it."""
    return request.client.host if request.client else "unknown"
