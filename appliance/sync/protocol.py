"""The upload protocol's topics and messages, without any I/O (see docs/asyncapi.yaml).

Bookings and telemetry live in two trees: ``<prefix>/<station>/...`` carries transactions,
answers and commands; ``<prefix>-telemetry/<station>/{status,health,alerts}`` carries what central
operations watch, so a monitoring client can be granted the second without ever reading the first.

A transaction goes out as ``meta`` (what is coming), numbered ``chunk/<n>`` messages, and ``end``
(are you complete?). The central service answers on the station's ack topic with ``stored``
(with a receipt), ``missing`` (the chunk numbers to resend, or the meta) or ``rejected`` (a reason
the officer can read). Only ``stored`` ends a delivery. Every message names its transaction id,
so every resend is idempotent at the receiver.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import SyncError

PROTOCOL_VERSION = 1
TXID_RE = re.compile(r"^[0-9a-f]{32}$")
STATION_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_CONTROL_BYTES = 64 * 1024  # JSON control messages are small; anything bigger is refused


class MalformedMessage(SyncError):
    """A message on one of our topics does not follow the protocol."""


TELEMETRY_KINDS = ("status", "health", "alerts")


def telemetry_root(prefix: str) -> str:
    """The root of the telemetry tree: a monitoring client reads it without seeing a booking."""
    return f"{prefix}-telemetry"


class AckStatus(enum.StrEnum):
    """What central says about a transaction."""

    STORED = "stored"
    MISSING = "missing"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic one station uses, from the prefix and the station id."""

    prefix: str
    station_id: str

    @property
    def base(self) -> str:
        """``<prefix>/<station>``."""
        return f"{self.prefix}/{self.station_id}"

    def meta(self, txid: str) -> str:
        """Where a transaction's metadata goes."""
        return f"{self.base}/tx/{txid}/meta"

    def chunk(self, txid: str, index: int) -> str:
        """Where chunk ``index`` goes."""
        return f"{self.base}/tx/{txid}/chunk/{index}"

    def end(self, txid: str) -> str:
        """Where the station asks whether central has every chunk."""
        return f"{self.base}/tx/{txid}/end"

    def query(self, txid: str) -> str:
        """Where the station asks central where a stored transaction was passed on."""
        return f"{self.base}/tx/{txid}/query"

    @property
    def passed_on(self) -> str:
        """Central's answers to this station's ``query`` messages."""
        return f"{self.base}/passed-on"

    @property
    def ack(self) -> str:
        """Central's answers to this station."""
        return f"{self.base}/ack"

    @property
    def telemetry_base(self) -> str:
        """``<prefix>-telemetry/<station>``: telemetry's own tree, apart from the bookings."""
        return f"{telemetry_root(self.prefix)}/{self.station_id}"

    @property
    def status(self) -> str:
        """Retained birth message; the will replaces it with offline."""
        return f"{self.telemetry_base}/status"

    @property
    def health(self) -> str:
        """Periodic health."""
        return f"{self.telemetry_base}/health"

    @property
    def alerts(self) -> str:
        """Alerts."""
        return f"{self.telemetry_base}/alerts"

    @property
    def commands(self) -> str:
        """Requests from central operations."""
        return f"{self.base}/cmd"


@dataclass(frozen=True, slots=True)
class TransactionMeta:
    """The metadata message: what is coming."""

    transaction_id: str
    sha256: str
    size: int
    chunks: int
    chunk_size: int
    content_type: str
    priority: int
    clock_trusted: bool
    manifest_version: str = ""
    booking_id: str = ""

    def encode(self) -> bytes:
        """JSON bytes."""
        return _dumps({"v": PROTOCOL_VERSION, **{f: getattr(self, f) for f in self.__slots__}})

    @classmethod
    def decode(cls, payload: bytes) -> TransactionMeta:
        """Parse and check a metadata message."""
        data = loads_control(payload)
        try:
            meta = cls(
                transaction_id=str(data["transaction_id"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                chunks=int(data["chunks"]),
                chunk_size=int(data["chunk_size"]),
                content_type=str(data["content_type"]),
                priority=int(data["priority"]),
                clock_trusted=bool(data["clock_trusted"]),
                manifest_version=str(data.get("manifest_version", "")),
                booking_id=str(data.get("booking_id", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad meta message: {exc!r}") from exc
        if not TXID_RE.match(meta.transaction_id):
            raise MalformedMessage("bad transaction id")
        if not re.fullmatch(r"[0-9a-f]{64}", meta.sha256):
            raise MalformedMessage("bad sha256")
        if meta.size < 0 or meta.chunk_size <= 0 or meta.chunks != chunk_count(
            meta.size, meta.chunk_size
        ):
            raise MalformedMessage("size, chunk size and chunk count disagree")
        return meta


@dataclass(frozen=True, slots=True)
class Ack:
    """Central's answer about one transaction."""

    transaction_id: str
    status: AckStatus
    receipt: dict[str, Any] = field(default_factory=dict)
    missing: tuple[int, ...] = ()
    need_meta: bool = False
    reason: str = ""

    def encode(self) -> bytes:
        """JSON bytes (unsigned: central signs :meth:`body` with appliance.sync.receipts)."""
        return _dumps(self.body())

    def body(self) -> dict[str, Any]:
        """The message as a JSON object."""
        body: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "transaction_id": self.transaction_id,
            "status": self.status.value,
        }
        if self.status is AckStatus.STORED:
            body["receipt"] = self.receipt
        elif self.status is AckStatus.MISSING:
            body["missing"] = list(self.missing)
            body["need_meta"] = self.need_meta
        else:
            body["reason"] = self.reason
        return body

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        """Parse and check an ack message."""
        return cls.from_body(loads_control(payload))

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> Ack:
        """Check an ack message already parsed."""
        try:
            txid = str(data["transaction_id"])
            status = AckStatus(data["status"])
            receipt = data.get("receipt") or {}
            missing = tuple(int(n) for n in data.get("missing", ()))
            need_meta = bool(data.get("need_meta", False))
            reason = str(data.get("reason", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad ack message: {exc!r}") from exc
        if not TXID_RE.match(txid):
            raise MalformedMessage("bad transaction id")
        if not isinstance(receipt, dict):
            raise MalformedMessage("receipt must be an object")
        if status is AckStatus.STORED and not receipt.get("receipt"):
            raise MalformedMessage("stored without a receipt")
        if status is AckStatus.REJECTED and not reason:
            raise MalformedMessage("rejected without a reason")
        return cls(txid, status, receipt, missing, need_meta, reason[:500])


def parse_passed_on(payload: bytes) -> dict[str, Any]:
    """Parse and check central's answer to a ``query``: where a transaction was passed on."""
    data = loads_control(payload)
    if not TXID_RE.match(str(data.get("transaction_id", ""))):
        raise MalformedMessage("bad transaction id")
    if not isinstance(data.get("held"), bool):
        raise MalformedMessage("passed-on answer without `held`")
    if not isinstance(data.get("passed_on", []), list):
        raise MalformedMessage("passed_on must be a list")
    return data


def chunk_count(size: int, chunk_size: int) -> int:
    """Chunks needed for ``size`` bytes (an empty transaction still sends one empty chunk)."""
    return max(1, math.ceil(size / chunk_size))


def split(data: bytes, chunk_size: int) -> list[bytes]:
    """The chunks of a transaction, in order."""
    return [data[i * chunk_size : (i + 1) * chunk_size] for i in range(chunk_count(len(data),
                                                                                chunk_size))]


def meta_for(transaction_id: str, data: bytes, chunk_size: int, **fields: Any) -> TransactionMeta:
    """Build the metadata message of a transaction."""
    return TransactionMeta(
        transaction_id=transaction_id,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        chunks=chunk_count(len(data), chunk_size),
        chunk_size=chunk_size,
        **fields,
    )


def parse_tx_topic(topic: str, prefix: str) -> tuple[str, str, str, int | None]:
    """Split ``<prefix>/<station>/tx/<txid>/<kind>[/<n>]``; raises MalformedMessage."""
    parts = topic.split("/")
    if len(parts) not in (5, 6) or parts[0] != prefix or parts[2] != "tx":
        raise MalformedMessage(f"not a transaction topic: {topic[:120]}")
    station, txid, kind = parts[1], parts[3], parts[4]
    if not STATION_RE.match(station) or not TXID_RE.match(txid):
        raise MalformedMessage("bad station or transaction id in topic")
    if kind == "chunk" and len(parts) == 6 and parts[5].isdigit():
        return station, txid, kind, int(parts[5])
    if kind in ("meta", "end", "query") and len(parts) == 5:
        return station, txid, kind, None
    raise MalformedMessage(f"unknown transaction message kind in {topic[:120]}")


def parse_telemetry_topic(topic: str, prefix: str) -> tuple[str, str]:
    """Split ``<prefix>-telemetry/<station>/<kind>``; raises MalformedMessage."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != telemetry_root(prefix):
        raise MalformedMessage(f"not a telemetry topic: {topic[:120]}")
    station, kind = parts[1], parts[2]
    if not STATION_RE.match(station) or kind not in TELEMETRY_KINDS:
        raise MalformedMessage(f"bad station or telemetry kind in {topic[:120]}")
    return station, kind


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def loads_control(payload: bytes) -> dict[str, Any]:
    """Parse a control message: a bounded JSON object, else MalformedMessage."""
    if len(payload) > MAX_CONTROL_BYTES:
        raise MalformedMessage(f"control message too large ({len(payload)} bytes)")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." within the size cap still nests too deep
        raise MalformedMessage("JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise MalformedMessage("message must be a JSON object")
    return data
