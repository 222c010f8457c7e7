"""Passwords and PINs: argon2id hashes from a credential, never the TOML; lockout after failures.

A credential holds lines ``name:hash`` or ``name:role:hash`` (blank lines and ``#`` comments
ignored); ``booking-station hash-password NAME`` prints such a line. New hashes are argon2id
(argon2-cffi's defaults); PBKDF2-SHA256 lines from earlier releases are still accepted, and
:meth:`Passwords.needs_rehash` tells the caller to store an argon2id hash instead. A name that
does not exist is checked against a decoy hash of the same cost, so the answer takes as long
for an unknown name as for a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PBKDF2_PREFIX = "pbkdf2_sha256$"
ITERATIONS = 310_000  # PBKDF2 lines written by earlier releases

_HASHER = PasswordHasher()
_DECOY = _HASHER.hash(os.urandom(16).hex())


def hash_password(password: str) -> str:
    """The stored form of a new password or PIN (argon2id)."""
    return _HASHER.hash(password)


def hash_pbkdf2(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The stored form earlier releases wrote (kept to test the upgrade path)."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PBKDF2_PREFIX}{iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; None (no such name) checks a decoy and fails."""
    if stored is None:
        _verify_argon2(password, _DECOY)
        return False
    if stored.startswith(PBKDF2_PREFIX):
        return _verify_pbkdf2(password, stored)
    return _verify_argon2(password, stored)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` should be replaced by a fresh argon2id hash after a good login."""
    if stored.startswith(PBKDF2_PREFIX):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def _verify_argon2(password: str, stored: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _verify_pbkdf2(password: str, stored: str) -> bool:
    try:
        _scheme, iterations, salt, expected = stored.split("$")
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt),
                                     int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


@dataclass(frozen=True, slots=True)
class Login:
    """One line of a logins credential."""

    name: str
    role: str
    hash: str


def parse_logins(text: str, *, default_role: str) -> dict[str, Login]:
    """``name:hash`` or ``name:role:hash`` lines (blank lines and # comments ignored)."""
    logins: dict[str, Login] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        parts = line.split(":")
        if len(parts) == 2:
            name, stored = parts
            role = default_role
        else:
            name, role, stored = parts[0], parts[1], ":".join(parts[2:])
        logins[name.strip()] = Login(name.strip(), role.strip(), stored.strip())
    return logins


def parse_users(text: str) -> dict[str, str]:
    """``name -> hash`` of a logins credential (every role)."""
    return {name: login.hash for name, login in parse_logins(text, default_role="").items()}


class Locked(Exception):
    """Too many failures: sign-in refused until ``until`` (monotonic seconds)."""

    def __init__(self, key: str, until: float) -> None:
        super().__init__(key)
        self.key = key
        self.until = until


@dataclass(slots=True)
class Lockout:
    """Failures counted per key (a name, a client address); a lock after ``limit`` of them.

    The count of a key is forgotten ``lock_s`` after its last failure, and at a success.
    """

    limit: int = 5
    lock_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def check(self, *keys: str) -> None:
        """Raise :class:`Locked` when any of ``keys`` is locked now."""
        now = self.clock()
        for key in keys:
            until = self._locked_until.get(key)
            if until is not None:
                if now < until:
                    raise Locked(key, until)
                self._locked_until.pop(key, None)

    def failure(self, *keys: str) -> list[str]:
        """Count a failure for each key; returns the keys that became locked by it."""
        now = self.clock()
        locked = []
        for key in keys:
            count, last = self._failures.get(key, (0, now))
            count = 1 if now - last > self.lock_s else count + 1
            self._failures[key] = (count, now)
            if count >= self.limit:
                self._locked_until[key] = now + self.lock_s
                self._failures.pop(key, None)
                locked.append(key)
        return locked

    def success(self, *keys: str) -> None:
        """A good sign-in clears the failures of its keys."""
        for key in keys:
            self._failures.pop(key, None)
