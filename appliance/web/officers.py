"""The officer at the kiosk: sign-in with an id and PIN, the PIN lockout, the idle lock.

Officers' PINs are argon2id hashes in a credential the install writes
(``web.officers_credential``), never in the TOML. One officer is signed in at the screen at a
time: a sign-in ends every other kiosk session, so the live preview and the booking's actions
belong to one browser. Five wrong PINs lock that officer out for ten minutes, and both the
failures and the lockout are audited. After ``web.kiosk_idle_lock_s`` without a touch the screen
locks: every kiosk route answers 423 until an officer signs in again. The booking in progress
lives in the booking service, not in the session, so it survives the lock untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from appliance.errors import ConfigError
from appliance.system.secrets import read_secret
from appliance.web.auth import Locked, Lockout, parse_users, verify_password
from appliance.web.config import WebSection
from appliance.web.security import UNSAFE_METHODS
from appliance.web.sessions import Role, Session, SessionStore, csrf_matches

#: A signed-in officer's session ends after a shift at most, locked or not.
SHIFT_S = 12 * 3600.0
#: Wrong PINs before an officer is locked out, and for how long.
PIN_TRIES = 5
PIN_LOCKOUT_S = 600.0
#: Longest officer id and PIN the sign-in form takes.
OFFICER_ID_MAX = 32
PIN_MAX = 32

Audit = Callable[[str, str, dict[str, Any]], Awaitable[Any]]


class SignInRefused(Exception):
    """A wrong id or PIN, or an officer locked out (``retry_after_s`` then)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OfficerDesk:
    """Who is signed in at the kiosk, and whether the screen is locked."""

    def __init__(self, web: WebSection, audit: Audit | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_lock_s = web.kiosk_idle_lock_s
        self.sessions = SessionStore(cookie="kiosk", idle_s=SHIFT_S, absolute_s=SHIFT_S,
                                     secure=False, clock=clock)
        self.lockout = Lockout(limit=PIN_TRIES, lock_s=PIN_LOCKOUT_S, clock=clock)
        self._credential = web.officers_credential
        self._audit = audit
        self._clock = clock
        self._acting: dict[str, int] = {}  # actions in flight per session id

    async def sign_in(self, officer: str, pin: str) -> Session:
        """A new session for ``officer``, ending any other kiosk session; audited."""
        key = f"officer:{officer}"
        try:
            self.lockout.check(key)
        except Locked as exc:
            raise SignInRefused("Too many wrong PINs: this officer is locked out for now.",
                                exc.until - self._clock()) from exc
        hashes = await asyncio.to_thread(self._officers)
        known = officer in hashes
        if not await asyncio.to_thread(verify_password, pin, hashes.get(officer)):
            locked = self.lockout.failure(key)
            # an unknown id is not recorded: an officer may have typed the PIN into it
            detail: dict[str, Any] = {"surface": "kiosk", "officer": officer if known else None}
            if locked:
                detail["locked_out_s"] = PIN_LOCKOUT_S
            await self._record("kiosk", "login_failed", detail)
            if locked:
                raise SignInRefused("Too many wrong PINs: this officer is locked out for now.",
                                    PIN_LOCKOUT_S)
            raise SignInRefused("Wrong officer id or PIN.")
        self.lockout.success(key)
        for other in self.sessions.live():
            self.sessions.end(other)
        session = self.sessions.create(officer, Role.OFFICER)
        await self._record(f"officer:{officer}", "login", {"surface": "kiosk"})
        return session

    async def sign_out(self, session: Session) -> None:
        """End the session; audited."""
        self.sessions.end(session)
        await self._record(f"officer:{session.user}", "logout", {"surface": "kiosk"})

    def find(self, conn: HTTPConnection) -> Session | None:
        """The live kiosk session of ``conn``, locked or not."""
        session = self.sessions.find(conn, touch=False)
        if session is not None:
            self._lock_if_idle(session)
        return session

    def officer(self, conn: HTTPConnection, *, activity: bool = True) -> Session:
        """The signed-in, unlocked officer of ``conn``, or 401 / 423 / 403 (CSRF).

        ``activity`` counts the request as a touch that keeps the screen unlocked; the page's
        own background requests (state, streams) pass False so that they never hold it open.
        """
        session = self.find(conn)
        if session is None:
            raise HTTPException(401, "sign in first")
        if session.locked:
            raise HTTPException(423, "the screen is locked: sign in again")
        method = conn.scope.get("method", "GET")
        if method in UNSAFE_METHODS and not csrf_matches(conn, session):
            raise HTTPException(403, "missing or wrong CSRF token")
        if activity:
            session.last_seen = self._clock()
        return session

    def begin(self, session: Session) -> None:
        """An action of the officer started: the screen does not lock while it runs."""
        self._acting[session.sid] = self._acting.get(session.sid, 0) + 1

    def end(self, session: Session) -> None:
        """The action ended: the idle time counts from now."""
        left = self._acting.pop(session.sid, 1) - 1
        if left > 0:
            self._acting[session.sid] = left
        if not session.locked:
            session.last_seen = self._clock()

    def still_open(self, session: Session) -> bool:
        """Whether ``session`` is still signed in and unlocked (checked by long streams)."""
        if session not in self.sessions.live():
            return False
        self._lock_if_idle(session)
        return not session.locked

    def _lock_if_idle(self, session: Session) -> None:
        idle = self._clock() - session.last_seen > self.idle_lock_s
        if idle and not self._acting.get(session.sid):
            session.locked = True

    def _officers(self) -> dict[str, str]:
        try:
            return parse_users(read_secret(self._credential).decode())
        except ConfigError:
            return {}

    async def _record(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        if self._audit is not None:
            await self._audit(actor, action, detail)
