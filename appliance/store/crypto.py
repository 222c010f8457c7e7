"""AES-256-GCM for everything biometric or personal before it reaches SQLite.

Each blob is stored as ``nonce (12 bytes) || ciphertext+tag`` beside the id of the key that
sealed it. The associated data binds a blob to its row (booking id, record id, kind), so a blob
copied onto another row does not open. The key never sits in the database: it comes from a
systemd credential or a root-only key file (see :func:`appliance.system.secrets.read_secret`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.store.errors import DecryptionFailed, UnknownKey

KEY_BYTES = 32
NONCE_BYTES = 12


def key_id_of(key: bytes) -> str:
    """A short public name for a key: the first 16 hex digits of sha256(key)."""
    return hashlib.sha256(b"booking-station key id\0" + key).hexdigest()[:16]


def parse_key(material: bytes) -> bytes:
    """Accept a raw 32-byte key or its 64-digit hex form (with optional whitespace)."""
    if len(material) == KEY_BYTES:
        return material
    text = material.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecryptionFailed("store key must be 32 raw bytes or 64 hex digits") from exc
    if len(key) != KEY_BYTES:
        raise DecryptionFailed("store key must be 32 raw bytes or 64 hex digits")
    return key


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def associated_data(booking_id: str, record_id: str, kind: str) -> bytes:
    """The row a blob belongs to, bound into its tag."""
    return f"{booking_id}\x1f{record_id}\x1f{kind}".encode()


class BlobCipher:
    """Seals with the current key; opens with any loaded key by id."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        self._keys = {key_id_of(k): AESGCM(k) for k in (*previous, current)}
        self.current_id = key_id_of(current)

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every loaded key (current and previous)."""
        return frozenset(self._keys)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, str]:
        """Encrypt ``plaintext``; returns the blob and the key id to store beside it."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._keys[self.current_id].encrypt(nonce, plaintext, aad), self.current_id

    def open(self, blob: bytes, key_id: str, aad: bytes) -> bytes:
        """Decrypt a blob sealed by :meth:`seal` under ``key_id``."""
        aead = self._keys.get(key_id)
        if aead is None:
            raise UnknownKey(f"no key loaded with id {key_id}")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise DecryptionFailed(f"blob under key {key_id} does not open for its row") from exc
