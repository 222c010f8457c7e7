"""Reading secrets: systemd credentials first, else a root-only file; never the TOML.

Every secret the station reads (the store key, the broker password, the client key's
passphrase, the technician logins) comes through :func:`read_secret`, so the rule "a secret on a
disk that others can read is not a secret" is enforced in one place.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import SecretError


def credential_path(name: str) -> Path | None:
    """``$CREDENTIALS_DIRECTORY/name`` when systemd (or the demo) provides it and it exists."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / name
        if candidate.exists():
            return candidate
    return None


def read_secret(name: str, *, fallback_file: Path | None = None) -> bytes:
    """Read a secret from $CREDENTIALS_DIRECTORY/name, else from a root-only file.

    A fallback file that group or others can read is refused: a secret on a shared disk is not
    a secret.
    """
    found = credential_path(name)
    if found is not None:
        return found.read_bytes()
    if fallback_file is None:
        raise SecretError(
            f"secret {name!r} not found in $CREDENTIALS_DIRECTORY and no key file is set"
        )
    try:
        st = fallback_file.stat()
    except OSError as exc:
        raise SecretError(f"secret file {fallback_file}: {exc.strerror or exc}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"secret file {fallback_file} is readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
        )
    return fallback_file.read_bytes()
