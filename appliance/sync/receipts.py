"""Central's acks are signed, and the station believes only a signed ack meant for it.

An ack ends or fails a delivery, and a ``stored`` ack starts the clock on purging the booking's
biometrics: whoever could forge one could make a booking vanish. So central signs every ack
(``stored``, ``missing``, ``rejected``) with its Ed25519 key over the canonical JSON of the whole
message, which names the station, the transaction, the status, the receipt or reason, and the
time central signed it (``signed_at``). The station checks the signature with central's public
keys and that the ack names this station before the uploader sees it. Because the transaction
id and station id are inside the signature, a genuine ack cannot be replayed for another booking
or another station; replaying it for its own booking repeats what central already said.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.errors import SyncError
from appliance.sync.protocol import Ack, MalformedMessage, loads_control
from appliance.sync.signing import BadSignature, CentralKeys, sign


class AckRefused(SyncError):
    """An ack the station will not act on; ``reason`` is safe to log, audit and count."""

    def __init__(self, reason: str, *, transaction_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.transaction_id = transaction_id


def sign_ack(ack: Ack, station_id: str, key: Ed25519PrivateKey, *,
             now: float | None = None) -> bytes:
    """Central's side: the ack for ``station_id``, signed, as JSON bytes."""
    body = {**ack.body(), "station_id": station_id,
            "signed_at": round(time.time() if now is None else now, 3)}
    return json.dumps(sign(body, key), separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class AckVerifier:
    """The station's side: admits an ack payload or raises :class:`AckRefused`."""

    station_id: str
    keys: CentralKeys
    allow_unsigned: bool = False

    @property
    def signatures_required(self) -> bool:
        """False only on a test bench told, with no central key, to take unsigned acks."""
        return bool(self.keys) or not self.allow_unsigned

    def admit(self, payload: bytes) -> Ack:
        """Parse and authenticate one message from the ack topic."""
        try:
            body = loads_control(payload)
        except MalformedMessage as exc:
            raise AckRefused(f"malformed: {exc}") from exc
        txid = _txid(body)
        if self.signatures_required:
            if not self.keys:
                raise AckRefused("no central key is configured (mqtt.central_keys): acks "
                                 "cannot be verified", transaction_id=txid)
            try:
                self.keys.verify(body)
            except BadSignature as exc:
                raise AckRefused(str(exc), transaction_id=txid) from exc
            if body.get("station_id") != self.station_id:
                raise AckRefused("signed for another station", transaction_id=txid)
        try:
            return Ack.from_body(body)
        except MalformedMessage as exc:
            raise AckRefused(f"malformed: {exc}", transaction_id=txid) from exc


def _txid(body: dict[str, Any]) -> str:
    txid = body.get("transaction_id")
    return txid[:32] if isinstance(txid, str) and txid.isalnum() else ""
