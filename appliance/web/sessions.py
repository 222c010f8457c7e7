"""Signed-in people: server-side sessions behind a signed cookie, CSRF tokens, roles.

The cookie carries only a random session id, signed (itsdangerous) with a key made at start-up;
everything else stays on the station, so signing out or timing out ends a session for good and
a restart signs everyone out. Each surface has its own store and cookie (the officer's kiosk,
the technician's page), with its own idle and absolute lifetimes. A state-changing request must
also carry the session's CSRF token in the ``X-CSRF-Token`` header; the token reaches the page
only in the sign-in answer and ``GET .../session``, never in a cookie.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection

from appliance.web.security import UNSAFE_METHODS

CSRF_HEADER = "x-csrf-token"


class Role(enum.StrEnum):
    """What a signed-in person may do."""

    OFFICER = "officer"  # the kiosk: takes bookings
    TECHNICIAN = "technician"  # the technician page: everything but subjects
    AUDITOR = "auditor"  # the technician page: the audit log and its verification only


@dataclass(slots=True)
class Session:
    """One signed-in person on one browser."""

    sid: str
    user: str
    role: Role
    created: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    locked: bool = False  # the kiosk's idle lock: signed in, but the PIN is asked again


class SessionStore:
    """Sessions of one surface, kept in memory, named by a signed cookie."""

    def __init__(self, *, cookie: str, idle_s: float, absolute_s: float, secure: bool,
                 path: str = "/", clock: Callable[[], float] = time.monotonic) -> None:
        self.cookie = cookie
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.secure = secure
        self.path = path
        self._clock = clock
        self._signer = Signer(secrets.token_bytes(32), salt=f"booking-station {cookie}")
        self._sessions: dict[str, Session] = {}

    def create(self, user: str, role: Role) -> Session:
        """A new session (any session the same browser had is ended by the caller)."""
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), user, role, now, now)
        self._sessions[session.sid] = session
        return session

    def find(self, request: HTTPConnection, *, touch: bool = True) -> Session | None:
        """The live session named by the request's cookie, or None."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            sid = self._signer.unsign(raw).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self._clock()
        if now - session.created > self.absolute_s or now - session.last_seen > self.idle_s:
            self._sessions.pop(sid, None)
            return None
        if touch:
            session.last_seen = now
        return session

    def end(self, session: Session) -> None:
        """Sign out."""
        self._sessions.pop(session.sid, None)

    def end_user(self, user: str) -> None:
        """End every session of ``user`` (a changed password, a removed account)."""
        for sid in [s.sid for s in self._sessions.values() if s.user == user]:
            self._sessions.pop(sid, None)

    def remaining_s(self, session: Session) -> float:
        """Seconds until ``session`` ends unless it is used again (idle or absolute)."""
        now = self._clock()
        return max(0.0, min(session.created + self.absolute_s - now,
                            session.last_seen + self.idle_s - now))

    def live(self) -> list[Session]:
        """Sessions that have not timed out."""
        now = self._clock()
        return [s for s in self._sessions.values()
                if now - s.created <= self.absolute_s and now - s.last_seen <= self.idle_s]

    def set_cookie(self, response: Response, session: Session) -> None:
        """Name ``session`` in the browser: HttpOnly, SameSite=Strict, Secure under HTTPS."""
        response.set_cookie(self.cookie, self._signer.sign(session.sid).decode(),
                            max_age=int(self.absolute_s), path=self.path, httponly=True,
                            samesite="strict", secure=self.secure)

    def clear_cookie(self, response: Response) -> None:
        """Forget the cookie in the browser."""
        response.delete_cookie(self.cookie, path=self.path, httponly=True, samesite="strict",
                               secure=self.secure)

    def require(self, roles: Iterable[Role]) -> Callable[[Request], Session]:
        """A route dependency: a live session with one of ``roles``.

        State-changing requests must also carry the session's CSRF token in ``X-CSRF-Token``.
        """
        allowed = frozenset(roles)

        def dependency(request: Request) -> Session:
            session = self.find(request)
            if session is None:
                raise HTTPException(401, "sign in first")
            if session.role not in allowed:
                raise HTTPException(403, "your role may not do this")
            if request.method in UNSAFE_METHODS and not csrf_matches(request, session):
                raise HTTPException(403, "missing or wrong CSRF token")
            return session

        return dependency


def csrf_matches(request: HTTPConnection, session: Session) -> bool:
    """Whether the request carries the session's CSRF token (compared in constant time)."""
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), session.csrf.encode())
