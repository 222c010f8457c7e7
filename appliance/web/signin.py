"""The technician's sign-in: one password check per login, lockout, every failure audited.

The password is checked once, at sign-in; after that a signed session cookie names the person
(``appliance.web.sessions``). Checks run one at a time on a worker thread, so a crowd of
guessers costs the station one core at most and never stalls a booking's event loop. Five
failures lock the name and the client address for ten minutes, whether or not the name exists;
a name that does not exist is checked against a decoy hash of the same cost. Failed and locked
sign-ins are audited with the client address, and with the name only when it is a real account
(a password typed into the name field must not reach the log).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.store import oversight
from appliance.store.store import Store
from appliance.system.secrets import read_secret
from appliance.web.auth import (
    Locked,
    Lockout,
    Login,
    hash_password,
    needs_rehash,
    parse_logins,
    verify_password,
)
from appliance.web.sessions import Role, Session, SessionStore

log = logging.getLogger(__name__)

#: Idle and absolute lifetimes of a technician's session.
IDLE_S = 30 * 60
ABSOLUTE_S = 12 * 3600
COOKIE = "bs_technician"
#: Settings key of the argon2id hashes that replaced older lines at a good sign-in.
REHASHED_SETTING = "technician_rehashed"
#: Sign-ins that may wait for the one password check; more are refused at once (429).
MAX_WAITING = 4
#: The roles a logins line may name on the technician page.
PAGE_ROLES = frozenset({Role.TECHNICIAN, Role.AUDITOR})


class SignInFailed(Exception):
    """Wrong name or password (the answer never says which)."""


class SignInLocked(Exception):
    """Too many failures for this name or this address; ``retry_after_s`` until the next try."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


class SignInBusy(Exception):
    """Too many sign-ins are waiting for their password check: try again shortly."""


class NoAccounts(Exception):
    """The technician logins credential is missing."""


@dataclass(frozen=True, slots=True)
class Account:
    """A technician page account as the sign-in sees it."""

    name: str
    role: Role
    hash: str


class TechnicianSignIn:
    """Checks passwords against the logins credential and opens technician sessions."""

    def __init__(self, credential: str, store: Store | None, *, secure: bool,
                 lockout: Lockout | None = None) -> None:
        self.credential = credential
        self.store = store
        self.lockout = lockout or Lockout(limit=5, lock_s=600.0)
        self.sessions = SessionStore(cookie=COOKIE, idle_s=IDLE_S, absolute_s=ABSOLUTE_S,
                                     secure=secure)
        self._one_check = asyncio.Semaphore(1)
        self._waiting = 0
        self._rehashed: dict[str, tuple[str, str]] = {}  # name -> (digest of old line, new hash)

    def accounts(self) -> dict[str, Account]:
        """Every account of the technician page, with the newest hash of each."""
        try:
            text = read_secret(self.credential).decode()
        except ConfigError as exc:
            raise NoAccounts(str(exc)) from exc
        out: dict[str, Account] = {}
        for name, login in parse_logins(text, default_role=Role.TECHNICIAN).items():
            if login.role not in PAGE_ROLES:
                continue
            out[name] = Account(name, Role(login.role), self._newest_hash(login))
        return out

    async def sign_in(self, name: str, password: str, client: str) -> Session:
        """A new session for ``name``; raises SignInFailed, SignInLocked or NoAccounts."""
        keys = (f"user:{name}", f"addr:{client}")
        try:
            self.lockout.check(*keys)
        except Locked as exc:
            await self._audit_refusal(name, client, "locked")
            raise SignInLocked(_retry_after(exc, self.lockout)) from exc
        accounts = await asyncio.to_thread(self.accounts)
        account = accounts.get(name)
        good = await self._check(password, account.hash if account else None)
        if not good or account is None:
            locked = self.lockout.failure(*keys)
            await self._audit_failure(account, client, locked)
            if locked:  # this failure was the last one allowed: say so now
                raise SignInLocked(math.ceil(self.lockout.lock_s))
            raise SignInFailed(name)
        self.lockout.success(*keys)
        if needs_rehash(account.hash):
            await self._rehash(account, password)
        session = self.sessions.create(account.name, account.role)
        await self._audit(f"technician:{account.name}", "login",
                          {"client": client, "role": account.role.value})
        return session

    async def _check(self, password: str, stored: str | None) -> bool:
        """One password check at a time, then as long idle as it took.

        A crowd of guessers then holds at most half of one core (argon2id's lanes aside), and
        never more than :data:`MAX_WAITING` of them wait: the officer's booking comes first.
        """
        if self._waiting >= MAX_WAITING:
            raise SignInBusy()
        self._waiting += 1
        try:
            async with self._one_check:
                started = time.monotonic()
                good = await asyncio.to_thread(verify_password, password, stored)
                await asyncio.sleep(time.monotonic() - started)
        finally:
            self._waiting -= 1
        return good

    async def sign_out(self, session: Session, client: str) -> None:
        """End the session and audit it."""
        self.sessions.end(session)
        await self._audit(f"technician:{session.user}", "logout", {"client": client})

    # ---- re-hashing older lines -------------------------------------------------------------

    def _newest_hash(self, login: Login) -> str:
        if not needs_rehash(login.hash):
            return login.hash
        digest = _line_digest(login.hash)
        known = self._rehashed.get(login.name) or self._stored_rehash(login.name)
        if known and known[0] == digest:
            return known[1]
        return login.hash

    def _stored_rehash(self, name: str) -> tuple[str, str] | None:
        if self.store is None:
            return None
        stored = self.store.read(lambda conn: oversight.setting(conn, REHASHED_SETTING)) or {}
        found = stored.get(name)
        return (str(found["from"]), str(found["hash"])) if isinstance(found, dict) else None

    async def _rehash(self, account: Account, password: str) -> None:
        """Keep an argon2id hash for an older line; the credential itself is read-only."""
        fresh = await asyncio.to_thread(hash_password, password)
        text = await asyncio.to_thread(read_secret, self.credential)
        lines = parse_logins(text.decode(), default_role=Role.TECHNICIAN)
        original = lines[account.name].hash if account.name in lines else account.hash
        entry = (_line_digest(original), fresh)
        self._rehashed[account.name] = entry
        if self.store is not None:
            await self.store.write(oversight.update_setting(
                REHASHED_SETTING,
                lambda stored: {**(stored or {}),
                                account.name: {"from": entry[0], "hash": entry[1]}}))
        log.info("technician page: an older password hash was replaced by argon2id")

    # ---- audit ----------------------------------------------------------------------------

    async def _audit_failure(self, account: Account | None, client: str,
                             locked: list[str]) -> None:
        actor = f"technician:{account.name}" if account else "technician:unknown-name"
        await self._audit(actor, "login_failed", {"client": client})
        if locked:
            await self._audit(actor, "login_locked", {
                "client": client, "locked": sorted(k.split(":", 1)[0] for k in locked),
                "minutes": math.ceil(self.lockout.lock_s / 60)})

    async def _audit_refusal(self, name: str, client: str, why: str) -> None:
        known = name in await asyncio.to_thread(self._known_names)
        actor = f"technician:{name}" if known else "technician:unknown-name"
        await self._audit(actor, "login_failed", {"client": client, "why": why})

    def _known_names(self) -> set[str]:
        try:
            return set(self.accounts())
        except NoAccounts:
            return set()

    async def _audit(self, actor: str, action: str, detail: dict[str, object]) -> None:
        if self.store is not None:
            await self.store.audit(actor, action, detail)


def _line_digest(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()


def _retry_after(exc: Locked, lockout: Lockout) -> int:
    return max(1, math.ceil(exc.until - lockout.clock()))
