"""Central's Ed25519 signatures over JSON messages: what is signed, and the keys that may sign.

Acks and commands are JSON objects signed by central over their canonical form (the object
without ``sig``, keys sorted, compact, UTF-8). The object names the signing key in ``kid``: the
first 16 hex digits of the SHA-256 of the raw public key, so a station derives every key id from
the key files it holds and a rollover needs no id kept in step by hand. During a rollover the
station holds both public keys and accepts a signature by either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.errors import SyncError

KID_RE = re.compile(r"^[0-9a-f]{16}$")


class CentralKeyError(SyncError):
    """A configured central public key cannot be used."""


class BadSignature(SyncError):
    """A message is unsigned, signed by an unknown key, or altered after signing."""


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: the body without ``sig``, keys sorted, compact, UTF-8."""
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode()


def key_id(key: Ed25519PublicKey) -> str:
    """The id a signature names its key by: 16 hex digits of the raw key's SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Central's side: the body with its ``kid`` and ``sig`` added."""
    named = {**body, "kid": key_id(key.public_key())}
    return {**named, "sig": base64.b64encode(key.sign(canonical(named))).decode()}


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Central's Ed25519 public key from a PEM file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CentralKeyError(f"cannot read central's public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CentralKeyError(f"{path} is not an Ed25519 public key")
    return key


class CentralKeys:
    """The public keys central may sign with, by key id (two during a rollover)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def load(cls, paths: Iterable[Path]) -> CentralKeys:
        """Read every key file; raises CentralKeyError naming the first that cannot be used."""
        return cls(load_public_key(p) for p in paths)

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def ids(self) -> tuple[str, ...]:
        """The key ids accepted, for logs and diagnostics."""
        return tuple(sorted(self._keys))

    def verify(self, body: dict[str, Any]) -> str:
        """Check ``body``'s signature; returns the key id, or raises BadSignature."""
        sig, kid = body.get("sig"), body.get("kid")
        if not isinstance(sig, str) or not isinstance(kid, str):
            raise BadSignature("unsigned")
        key = self._keys.get(kid) if KID_RE.match(kid) else None
        if key is None:
            raise BadSignature("signed by an unknown key")
        try:
            key.verify(base64.b64decode(sig, validate=True), canonical(body))
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise BadSignature("bad signature") from exc
        return kid
