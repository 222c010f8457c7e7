"""Where the store's keys come from: the current key and, during a rotation, the previous one.

The current key is the systemd credential named by ``store.key_credential`` (or the root-only
``store.key_file``). While a rotation is under way the old key sits beside it under the same
name with ``.previous`` appended: the credential ``booking-station-db-key.previous`` or the file
``<key_file>.previous``. With both loaded, every blob opens whichever key sealed it, so a store
left half-rotated by a power cut works as before and the rotation simply resumes.
"""

from __future__ import annotations

from pathlib import Path

from appliance.errors import SecretError
from appliance.store.config import StoreSection
from appliance.store.crypto import BlobCipher, key_id_of, parse_key
from appliance.system.secrets import credential_path, read_secret

PREVIOUS_SUFFIX = ".previous"


def previous_credential_name(section: StoreSection) -> str:
    """The credential that holds the key being retired."""
    return section.key_credential + PREVIOUS_SUFFIX


def previous_key_file(section: StoreSection) -> Path | None:
    """The key file that holds the key being retired, when keys come from files."""
    if section.key_file is None:
        return None
    return section.key_file.with_name(section.key_file.name + PREVIOUS_SUFFIX)


def read_current_key(section: StoreSection) -> bytes:
    """The key new blobs are sealed with."""
    return parse_key(read_secret(section.key_credential, fallback_file=section.key_file))


def read_previous_keys(section: StoreSection) -> list[bytes]:
    """The retiring key, when a credential or file provides one; else an empty list."""
    name = previous_credential_name(section)
    if credential_path(name) is not None:
        return [parse_key(read_secret(name))]
    path = previous_key_file(section)
    if path is not None and path.exists():
        return [parse_key(read_secret(name, fallback_file=path))]
    return []


def read_key_file(path: Path) -> bytes:
    """A key from a root-only file named on the command line."""
    return parse_key(read_secret("(none)", fallback_file=path))


def load_cipher(section: StoreSection, *, new_key: bytes | None = None) -> BlobCipher:
    """The cipher the station (or a technician's tool) opens the store with.

    With ``new_key``, the configured key becomes a previous key and ``new_key`` seals: that is a
    rotation towards a key not yet installed as the credential.
    """
    current = read_current_key(section)
    previous = read_previous_keys(section)
    if new_key is not None:
        if key_id_of(new_key) == key_id_of(current):
            raise SecretError("the new key is the key already in use")
        previous, current = [*previous, current], new_key
    return BlobCipher(current, previous)
