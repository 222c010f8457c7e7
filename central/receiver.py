"""Reassemble, verify, store durably, deduplicate, answer.

The receiver answers ``stored`` only after the transaction's bytes are on disk (written to a
temporary file, fsynced, renamed, directory fsynced) and indexed in SQLite. A transaction id it
already holds is answered ``stored`` again with the same receipt: resends are idempotent. Partial
uploads live in memory; after a receiver restart the station's ``end`` (which repeats the
metadata) is answered ``missing`` with every chunk, and the station sends them again. Every
answer is signed with central's Ed25519 key (appliance/sync/receipts.py): a station believes
no unsigned ack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from appliance.sync.protocol import (
    Ack,
    AckStatus,
    MalformedMessage,
    TransactionMeta,
    parse_tx_topic,
)
from appliance.sync.receipts import sign_ack
from central.metrics import ReceiverMetrics, RejectReason
from central.passing import HELD_COLUMNS, held_record, held_records

log = logging.getLogger(__name__)
COLUMNS = ", ".join(HELD_COLUMNS)

Validator = Callable[[bytes], list[str]]
Courier = Callable[[str, str, bytes], None]  # (station, transaction id, bytes); raises on failure
MAX_PARTIAL_BYTES = 512 * 1024 * 1024
MAX_TRANSACTION_BYTES = 256 * 1024 * 1024
SHA_RETRIES = 3


@dataclass(slots=True)
class Destination:
    """Where central passes a booking on (the sharing manifest's entries)."""

    name: str
    purpose: str
    mandatory: bool = True


@dataclass(slots=True)
class _Assembly:
    station: str
    meta: TransactionMeta | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    sha_failures: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def bytes_held(self) -> int:
        return sum(len(c) for c in self.chunks.values())

    def missing(self) -> list[int]:
        if self.meta is None:
            return []
        return [n for n in range(self.meta.chunks) if n not in self.chunks]


def _no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """Answers are small: without TCP_NODELAY each waits out the station's delayed ACK."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class ReceiverStore:
    """Durable transactions on disk, indexed in SQLite."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "transactions").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(directory / "received.db", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS received (transaction_id TEXT PRIMARY KEY,"
            " station TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
            " content_type TEXT NOT NULL, receipt TEXT NOT NULL, stored_at TEXT NOT NULL,"
            " deliveries INTEGER NOT NULL DEFAULT 1)"
        )
        # where each transaction was actually passed on (a destination that took it)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS passed_on (transaction_id TEXT NOT NULL"
            " REFERENCES received(transaction_id), destination TEXT NOT NULL,"
            " purpose TEXT NOT NULL, passed_at TEXT NOT NULL,"
            " PRIMARY KEY (transaction_id, destination))"
        )
        self._lock = threading.Lock()

    def receipt_for(self, txid: str) -> dict[str, Any] | None:
        """The receipt of a transaction already held, counting the repeat delivery."""
        with self._lock:
            row = self._db.execute(
                "SELECT receipt FROM received WHERE transaction_id = ?", (txid,)
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE received SET deliveries = deliveries + 1 WHERE transaction_id = ?", (txid,)
            )
            return json.loads(row[0])

    def put(self, station: str, meta: TransactionMeta, data: bytes, receipt: dict[str, Any]
            ) -> None:
        """Write the bytes durably, then index them."""
        folder = self.directory / "transactions" / station
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{meta.transaction_id}.an2"
        tmp = folder / f".{meta.transaction_id}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO received (transaction_id, station, sha256, size,"
                " content_type, receipt, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (meta.transaction_id, station, meta.sha256, meta.size, meta.content_type,
                 json.dumps(receipt), receipt["stored_at"]),
            )

    def record_passed_on(self, txid: str, destination: str, purpose: str, at: str) -> None:
        """Note that ``destination`` took the transaction (once; a repeat keeps the first)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO passed_on (transaction_id, destination, purpose, passed_at)"
                " VALUES (?, ?, ?, ?)", (txid, destination, purpose, at))

    def held(self, txid: str) -> dict[str, Any] | None:
        """What central holds about one transaction (metadata only), or None."""
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM received WHERE transaction_id = ?",
                                   (txid,)).fetchone()
            if row is None:
                return None
            passed = self._db.execute(
                "SELECT destination, purpose, passed_at FROM passed_on WHERE transaction_id = ?",
                (txid,)).fetchall()
        return held_record(row, passed)

    def export(self) -> Iterator[dict[str, Any]]:
        """Every transaction held, oldest first, metadata only (read in pages of 500)."""

        def page(after: tuple[str, str]) -> list[tuple[Any, ...]]:
            with self._lock:
                return self._db.execute(
                    f"SELECT {COLUMNS} FROM received WHERE (stored_at, transaction_id) > (?, ?)"
                    " ORDER BY stored_at, transaction_id LIMIT 500", after).fetchall()

        def handoffs(ids: list[str]) -> list[tuple[str, str, str, str]]:
            with self._lock:
                return self._db.execute(
                    "SELECT transaction_id, destination, purpose, passed_at FROM passed_on"
                    " WHERE transaction_id IN (SELECT value FROM json_each(?))",
                    (json.dumps(ids),)).fetchall()

        return held_records(page, handoffs)

    def count(self) -> int:
        """Transactions held."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM received").fetchone()[0]

    def deliveries(self) -> dict[str, int]:
        """How many times each transaction was delivered (1 = no duplicates)."""
        with self._lock:
            return dict(self._db.execute("SELECT transaction_id, deliveries FROM received"))

    def holds(self, txid: str) -> bool:
        """True when the transaction is stored."""
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM received WHERE transaction_id = ?", (txid,)
            ).fetchone() is not None

    def read(self, station: str, txid: str) -> bytes:
        """The stored bytes."""
        return (self.directory / "transactions" / station / f"{txid}.an2").read_bytes()

    def close(self) -> None:
        """Close the index."""
        self._db.close()


class CentralReceiver:
    """Subscribes to every station's transactions and answers each on its ack topic."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "bst",
        client_id: str = "central-receiver",
        validator: Validator | None = None,
        destinations: list[Destination] | None = None,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        writers: int = 4,
        signing_key: Ed25519PrivateKey | None = None,
        metrics: ReceiverMetrics | None = None,
        couriers: dict[str, Courier] | None = None,
    ) -> None:
        self.signing_key = signing_key
        self.store = ReceiverStore(directory)
        self.metrics = metrics
        self.couriers = couriers or {}
        if metrics is not None:
            metrics.held.set_function(self.store.count)
        self.host, self.port, self.prefix = host, port, prefix
        self.validator = validator
        self.destinations = destinations or []
        self._assemblies: dict[str, _Assembly] = {}
        self._storing: set[str] = set()
        self._writers = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="central-store")
        self._connected = threading.Event()
        self.malformed = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if tls is not None:
            client.tls_set_context(tls)
        if username:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self._connected.clear()
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 5)
        client.on_socket_open = _no_delay
        self._client = client

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; returns once subscribed."""
        from paho.mqtt.packettypes import PacketTypes

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise ConnectionError(f"central receiver cannot reach {self.host}:{self.port}")

    def stop(self) -> None:
        """Disconnect and close the index."""
        self._client.disconnect()
        self._client.loop_stop()
        self._writers.shutdown(wait=True)
        self.store.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                    _p: Any) -> None:
        if reason.is_failure:
            log.warning("central: broker refused: %s", reason)
            return
        client.subscribe(f"{self.prefix}/+/tx/#", qos=1)
        self._connected.set()

    def _answer(self, station: str, ack: Ack) -> None:
        payload = (sign_ack(ack, station, self.signing_key) if self.signing_key is not None
                   else ack.encode())  # unsigned only for benches that allow unsigned acks
        self._client.publish(f"{self.prefix}/{station}/ack", payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            station, txid, kind, index = parse_tx_topic(msg.topic, self.prefix)
            self._handle(station, txid, kind, index, bytes(msg.payload))
        except MalformedMessage as exc:
            self.malformed += 1
            if self.metrics is not None:
                self.metrics.malformed_message()
            log.warning("central: ignored malformed message: %s", exc)
        except Exception:  # the receiver keeps serving other stations whatever one sends
            self.malformed += 1
            log.exception("central: failed to handle a message")

    def _handle(self, station: str, txid: str, kind: str, index: int | None, payload: bytes
                ) -> None:
        if kind == "query":
            self._answer_passed_on(station, txid)
            return
        if txid in self._storing:
            return  # being written now; its `stored` answer follows
        receipt = self.store.receipt_for(txid) if kind != "chunk" else None
        if receipt is not None:
            if self.metrics is not None:
                self.metrics.duplicate()
            self._answer(station, Ack(txid, AckStatus.STORED, receipt=receipt))
            return
        if kind == "chunk":
            if self.store.holds(txid):
                return
            asm = self._assemblies.setdefault(txid, _Assembly(station))
            assert index is not None
            if asm.meta is not None and index >= asm.meta.chunks:
                raise MalformedMessage(f"chunk {index} beyond the announced count")
            if self._partial_bytes() + len(payload) > MAX_PARTIAL_BYTES:
                raise MalformedMessage("too much partial data held; chunk dropped")
            asm.chunks[index] = payload
            return
        meta = TransactionMeta.decode(payload)
        if meta.transaction_id != txid:
            raise MalformedMessage("meta names another transaction than its topic")
        if meta.size > MAX_TRANSACTION_BYTES:
            self._count_rejection(RejectReason.TOO_LARGE)
            self._answer(station, Ack(txid, AckStatus.REJECTED,
                                      reason=f"transaction too large ({meta.size} bytes)"))
            return
        asm = self._assemblies.setdefault(txid, _Assembly(station))
        if asm.meta is None or asm.meta != meta:
            asm.meta = meta
            asm.chunks = {n: c for n, c in asm.chunks.items() if n < meta.chunks}
        if kind == "end":
            self._complete(station, txid, asm)

    def _partial_bytes(self) -> int:
        return sum(a.bytes_held for a in self._assemblies.values())

    def _complete(self, station: str, txid: str, asm: _Assembly) -> None:
        assert asm.meta is not None
        missing = asm.missing()
        if missing:
            self._answer(station, Ack(txid, AckStatus.MISSING, missing=tuple(missing)))
            return
        data = b"".join(asm.chunks[n] for n in range(asm.meta.chunks))
        if len(data) != asm.meta.size or hashlib.sha256(data).hexdigest() != asm.meta.sha256:
            asm.sha_failures += 1
            asm.chunks.clear()
            if asm.sha_failures >= SHA_RETRIES:
                del self._assemblies[txid]
                self._count_rejection(RejectReason.CHECKSUM)
                self._answer(station, Ack(txid, AckStatus.REJECTED,
                                          reason="data does not match its checksum"))
            else:
                self._answer(station, Ack(txid, AckStatus.MISSING,
                                          missing=tuple(range(asm.meta.chunks))))
            return
        problems = self.validator(data) if self.validator else []
        if problems:
            del self._assemblies[txid]
            self._count_rejection(RejectReason.INVALID_RECORD)
            self._answer(station, Ack(txid, AckStatus.REJECTED,
                                      reason="; ".join(problems)[:480]))
            return
        receipt = {
            "receipt": f"R-{uuid.uuid4().hex[:16]}",
            "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "sha256": asm.meta.sha256,
            "manifest_version": asm.meta.manifest_version,
            "shared_with": [
                {"name": d.name, "purpose": d.purpose, "mandatory": d.mandatory}
                for d in self.destinations
            ],
        }
        del self._assemblies[txid]
        # fsyncs take milliseconds each: several transactions are made durable at once, off the
        # network thread; until its answer is out, anything about that transaction is ignored
        self._storing.add(txid)
        self._writers.submit(self._store_and_answer, station, asm.meta, data, receipt,
                             started=asm.started)

    def _answer_passed_on(self, station: str, txid: str) -> None:
        """Where a transaction was passed on; a station learns only about its own."""
        held = self.store.held(txid)
        body: dict[str, Any] = {"v": 1, "transaction_id": txid, "held": False, "passed_on": []}
        if held is not None and held["station"] == station:
            body.update(held=True, receipt=held["receipt"], stored_at=held["stored_at"],
                        manifest_version=held["manifest_version"],
                        shared_with=held["shared_with"], passed_on=held["passed_on"])
        self._client.publish(f"{self.prefix}/{station}/passed-on",
                             json.dumps(body, separators=(",", ":"), sort_keys=True).encode(),
                             qos=1)

    def _pass_on(self, station: str, meta: TransactionMeta, data: bytes) -> None:
        """Hand a stored transaction to each destination that has a courier; note who took it."""
        for destination in self.destinations:
            courier = self.couriers.get(destination.name)
            if courier is None:
                continue
            try:
                courier(station, meta.transaction_id, data)
            except Exception:  # one destination down never stops the others or the receiver
                log.exception("central: %s did not take transaction %s", destination.name,
                              meta.transaction_id)
                continue
            self.store.record_passed_on(meta.transaction_id, destination.name,
                                        destination.purpose,
                                        datetime.now(UTC).isoformat(timespec="seconds"))

    def _count_rejection(self, reason: RejectReason) -> None:
        if self.metrics is not None:
            self.metrics.rejected(reason)

    def _store_and_answer(self, station: str, meta: TransactionMeta, data: bytes,
                          receipt: dict[str, Any], *, started: float | None = None) -> None:
        try:
            self.store.put(station, meta, data, receipt)
            if self.metrics is not None:
                self.metrics.stored(len(data), time.monotonic() - (started or time.monotonic()))
            self._answer(station, Ack(meta.transaction_id, AckStatus.STORED, receipt=receipt))
        except Exception:  # not stored: no answer; the station asks again and resends
            log.exception("central: could not store transaction %s", meta.transaction_id)
            return
        finally:
            self._storing.discard(meta.transaction_id)
        if self.couriers:
            self._pass_on(station, meta, data)
