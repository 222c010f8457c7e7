"""Technician logins for the admin page: PBKDF2-SHA256 hashes from a credential, never the TOML.

The credential holds lines ``user:pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``;
``booking-station hash-password`` prints such a line.
"""

from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 310_000


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
                  ) -> str:
    """The stored form of a password."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against its stored form."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt),
                                     int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


def parse_users(text: str) -> dict[str, str]:
    """``user:hash`` lines (blank lines and # comments ignored)."""
    users = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, stored = line.split(":", 1)
        users[user.strip()] = stored.strip()
    return users
