"""Several receivers, one broker, one PostgreSQL: losing a machine loses and duplicates nothing.

Each receiver subscribes through an MQTT 5 shared subscription (``$share/<group>/<prefix>/+/tx/#``),
so the broker spreads the messages (not the transactions) over the receivers alive: a chunk may
land on one receiver and the ``end`` of the same transaction on another. Everything a receiver
knows therefore lives in PostgreSQL: the metadata and the chunks of partial uploads, and the
transactions held with their bytes and receipts. ``end`` assembles from the database.

Exactly once is the database's promise, not a check: the transaction id is the primary key of
``held`` and the bytes go in with ``INSERT ... ON CONFLICT DO NOTHING``. Two receivers completing
the same transaction at once both try; one row wins, and the loser answers with the winner's
receipt. A receiver killed at any moment leaves either nothing (its transaction rolled back) or
a committed row; the station resends whatever it did not hear answered, and the survivor answers
from the database.

Passing on is the database's too. A transaction held while couriers are configured is marked
``pass_on_due``; each receiver's pass-on thread claims due rows with ``FOR UPDATE SKIP LOCKED``
(two receivers never hand the same transaction over at once), calls the couriers of the
destinations that have not taken it yet, records each hand-off in ``passed_on`` and clears the
mark, all in one database transaction. A receiver killed mid-way leaves the row due, and any
receiver hands it over again: a destination may see a transaction twice (couriers are
idempotent, as :class:`central.passing.FolderCourier` is), ``passed_on`` never records it twice,
and a destination that refuses is tried again on the next round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
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
from central.receiver import (
    MAX_TRANSACTION_BYTES,
    SHA_RETRIES,
    Courier,
    Destination,
    Validator,
    _no_delay,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS held (
    transaction_id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    receipt TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    stored_by TEXT NOT NULL,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS partial_meta (
    transaction_id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    meta TEXT NOT NULL,
    sha_failures INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS partial_chunks (
    transaction_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (transaction_id, n)
);
ALTER TABLE held ADD COLUMN IF NOT EXISTS pass_on_due BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS held_pass_on_due ON held (stored_at) WHERE pass_on_due;
CREATE TABLE IF NOT EXISTS passed_on (
    transaction_id TEXT NOT NULL REFERENCES held (transaction_id),
    destination TEXT NOT NULL,
    purpose TEXT NOT NULL,
    passed_at TEXT NOT NULL,
    passed_by TEXT NOT NULL,
    PRIMARY KEY (transaction_id, destination)
);
"""


COLUMNS = ", ".join(HELD_COLUMNS)
#: Transactions an export reads at once.
EXPORT_PAGE = 500


class SharedStore:
    """The receivers' shared state in PostgreSQL; one connection per receiver."""

    def __init__(self, dsn: str) -> None:
        self._db = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        with self._lock, self._db.transaction():
            # several receivers may start at once: the first creates, the rest wait for it
            self._db.execute("SELECT pg_advisory_xact_lock(2028)")
            self._db.execute(SCHEMA)

    def receipt_for(self, txid: str) -> dict[str, Any] | None:
        """The receipt of a transaction already held, counting the repeat delivery."""
        with self._lock:
            row = self._db.execute(
                "UPDATE held SET deliveries = deliveries + 1 WHERE transaction_id = %s"
                " RETURNING receipt", (txid,)).fetchone()
        return json.loads(row[0]) if row else None

    def held(self, txid: str) -> dict[str, Any] | None:
        """What central holds about one transaction (metadata, where it went), or None."""
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM held WHERE transaction_id = %s",
                                   (txid,)).fetchone()
            if row is None:
                return None
            passed = self._db.execute(
                "SELECT destination, purpose, passed_at FROM passed_on WHERE transaction_id = %s",
                (txid,)).fetchall()
        return held_record(row, passed)

    def export(self) -> Iterator[dict[str, Any]]:
        """Every transaction held, oldest first, metadata only (read in pages)."""

        def page(after: tuple[str, str]) -> list[tuple[Any, ...]]:
            with self._lock:
                return self._db.execute(
                    f"SELECT {COLUMNS} FROM held WHERE (stored_at, transaction_id) > (%s, %s)"
                    " ORDER BY stored_at, transaction_id LIMIT %s", (*after, EXPORT_PAGE)
                ).fetchall()

        def handoffs(ids: list[str]) -> list[tuple[str, str, str, str]]:
            with self._lock:
                return self._db.execute(
                    "SELECT transaction_id, destination, purpose, passed_at FROM passed_on"
                    " WHERE transaction_id = ANY(%s)", (ids,)).fetchall()

        return held_records(page, handoffs)

    def holds(self, txid: str) -> bool:
        """True when the transaction is held."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM held WHERE transaction_id = %s",
                                    (txid,)).fetchone() is not None

    def put_chunk(self, txid: str, station: str, index: int, data: bytes) -> None:
        """Keep one chunk (a resent chunk replaces itself)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO partial_chunks (transaction_id, n, data) SELECT %s, %s, %s"
                " WHERE NOT EXISTS (SELECT 1 FROM held WHERE transaction_id = %s)"
                " ON CONFLICT (transaction_id, n) DO UPDATE SET data = EXCLUDED.data",
                (txid, index, data, txid))

    def put_meta(self, station: str, meta: TransactionMeta) -> None:
        """Keep the metadata; a different one for the same id restarts the assembly."""
        encoded = meta.encode().decode()
        with self._lock, self._db.transaction():
            row = self._db.execute(
                "SELECT meta FROM partial_meta WHERE transaction_id = %s FOR UPDATE",
                (meta.transaction_id,)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO partial_meta (transaction_id, station, meta) VALUES (%s, %s, %s)"
                    " ON CONFLICT (transaction_id) DO NOTHING",
                    (meta.transaction_id, station, encoded))
            elif TransactionMeta.decode(row[0].encode()) != meta:
                self._db.execute(
                    "UPDATE partial_meta SET meta = %s WHERE transaction_id = %s",
                    (encoded, meta.transaction_id))
                self._db.execute(
                    "DELETE FROM partial_chunks WHERE transaction_id = %s AND n >= %s",
                    (meta.transaction_id, meta.chunks))

    def chunks(self, txid: str, count: int) -> dict[int, bytes]:
        """The chunks received so far, by number (any receiver's)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT n, data FROM partial_chunks WHERE transaction_id = %s AND n < %s",
                (txid, count)).fetchall()
        return {n: bytes(data) for n, data in rows}

    def age_s(self, txid: str) -> float:
        """Seconds since any receiver first saw the transaction's metadata (0 if unknown)."""
        with self._lock:
            row = self._db.execute(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp() - started_at) FROM partial_meta"
                " WHERE transaction_id = %s", (txid,)).fetchone()
        return float(row[0]) if row else 0.0

    def checksum_failed(self, txid: str) -> int:
        """Drop the chunks after a checksum mismatch; returns the failures so far."""
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM partial_chunks WHERE transaction_id = %s", (txid,))
            row = self._db.execute(
                "UPDATE partial_meta SET sha_failures = sha_failures + 1"
                " WHERE transaction_id = %s RETURNING sha_failures", (txid,)).fetchone()
        return row[0] if row else SHA_RETRIES

    def forget(self, txid: str) -> None:
        """Drop a refused transaction's partial state."""
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM partial_chunks WHERE transaction_id = %s", (txid,))
            self._db.execute("DELETE FROM partial_meta WHERE transaction_id = %s", (txid,))

    def hold(self, station: str, meta: TransactionMeta, data: bytes, receipt: dict[str, Any],
             receiver: str, pass_on: bool = False) -> tuple[bool, dict[str, Any]]:
        """Hold the transaction once; returns (this call stored it, the receipt to answer).

        The primary key decides between receivers completing the same transaction at once;
        the partial state goes in the same database transaction as the row. ``pass_on`` marks
        it due for the couriers (:class:`PassOn`).
        """
        with self._lock, self._db.transaction():
            won = self._db.execute(
                "INSERT INTO held (transaction_id, station, sha256, size, content_type, receipt,"
                " stored_at, stored_by, data, pass_on_due)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id",
                (meta.transaction_id, station, meta.sha256, meta.size, meta.content_type,
                 json.dumps(receipt), receipt["stored_at"], receiver, data,
                 pass_on)).fetchone()
            self._db.execute("DELETE FROM partial_chunks WHERE transaction_id = %s",
                             (meta.transaction_id,))
            self._db.execute("DELETE FROM partial_meta WHERE transaction_id = %s",
                             (meta.transaction_id,))
            if won:
                return True, receipt
            row = self._db.execute(
                "UPDATE held SET deliveries = deliveries + 1 WHERE transaction_id = %s"
                " RETURNING receipt", (meta.transaction_id,)).fetchone()
        return False, json.loads(row[0])

    def sweep(self) -> int:
        """Drop partial state of transactions already held; returns the rows dropped.

        A late resend may meet a completion on another receiver and leave a partial row behind.
        """
        with self._lock, self._db.transaction():
            chunks = self._db.execute(
                "DELETE FROM partial_chunks p USING held h"
                " WHERE p.transaction_id = h.transaction_id").rowcount
            metas = self._db.execute(
                "DELETE FROM partial_meta p USING held h"
                " WHERE p.transaction_id = h.transaction_id").rowcount
        return chunks + metas

    def count(self) -> int:
        """Transactions held."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM held").fetchone()[0]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class PassOn:
    """One receiver's pass-on thread: hands due transactions (any receiver's) to the couriers.

    It owns its own connection, since a claimed row stays locked while the couriers run. It
    works a round when it starts, whenever ``wake`` is called (a transaction was just held) and
    every ``retry_s`` seconds, which is when a destination that refused, or a row a dead
    receiver left due, is tried again.
    """

    def __init__(self, dsn: str, destinations: list[Destination], couriers: dict[str, Courier],
                 receiver: str, retry_s: float = 30.0) -> None:
        self.dsn, self.receiver, self.retry_s = dsn, receiver, retry_s
        self.destinations = [d for d in destinations if d.name in couriers]
        self.couriers = couriers
        self.passed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (it connects, and connects again after losing the database)."""
        self._thread = threading.Thread(target=self._run, name="pass-on", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A transaction was held: look for due ones now."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread after the transaction in hand."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        db: psycopg.Connection | None = None
        while not self._stop.is_set():
            # tried this round, and destinations that refused: again on the next round
            refused: list[str] = []
            down: set[str] = set()
            try:
                if db is None:
                    db = psycopg.connect(self.dsn, autocommit=True)
                while not self._stop.is_set() and self._one(db, refused, down):
                    pass
            except psycopg.Error:
                log.exception("central: pass-on lost the database; trying again in %g s",
                              self.retry_s)
                if db is not None:
                    db.close()
                db = None
            self._wake.wait(self.retry_s)
            self._wake.clear()
        if db is not None:
            db.close()

    def _one(self, db: psycopg.Connection, refused: list[str], down: set[str]) -> bool:
        """Hand one due transaction over; False when none is left to try this round.

        A destination that refuses once is ``down`` for the rest of the round, so a backlog
        meets one failed hand-off per round, not one per transaction.
        """
        with db.transaction():
            row = db.execute(
                "SELECT transaction_id, station, data FROM held WHERE pass_on_due"
                " AND NOT (transaction_id = ANY(%s)) ORDER BY stored_at LIMIT 1"
                " FOR UPDATE SKIP LOCKED", (refused,)).fetchone()
            if row is None:
                return False
            txid, station, data = row[0], row[1], bytes(row[2])
            taken = {d for (d,) in db.execute(
                "SELECT destination FROM passed_on WHERE transaction_id = %s", (txid,))}
            complete = True
            for destination in self.destinations:
                if destination.name in taken:
                    continue
                if destination.name in down:
                    complete = False
                    continue
                try:
                    self.couriers[destination.name](station, txid, data)
                except Exception:  # one destination down never stops the others
                    log.exception("central: %s did not take transaction %s; trying again in "
                                  "%g s", destination.name, txid, self.retry_s)
                    down.add(destination.name)
                    complete = False
                    continue
                db.execute(
                    "INSERT INTO passed_on (transaction_id, destination, purpose, passed_at,"
                    " passed_by) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (txid, destination.name, destination.purpose,
                     datetime.now(UTC).isoformat(timespec="seconds"), self.receiver))
                self.passed += 1
            if complete:
                db.execute("UPDATE held SET pass_on_due = false WHERE transaction_id = %s",
                           (txid,))
            else:
                refused.append(txid)
        return True


class SharedReceiver:
    """One of several receivers behind one shared subscription, state in PostgreSQL."""

    def __init__(
        self,
        dsn: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "bst",
        group: str = "central",
        client_id: str = "central-receiver",
        validator: Validator | None = None,
        destinations: list[Destination] | None = None,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        metrics: ReceiverMetrics | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        couriers: dict[str, Courier] | None = None,
        pass_on_retry_s: float = 30.0,
    ) -> None:
        self.signing_key = signing_key
        self.store = SharedStore(dsn)
        self.host, self.port, self.prefix, self.group = host, port, prefix, group
        self.client_id = client_id
        self.validator = validator
        self.destinations = destinations or []
        self.metrics = metrics
        if metrics is not None:
            metrics.held.set_function(self.store.count)
        self.pass_on = (PassOn(dsn, self.destinations, couriers, client_id, pass_on_retry_s)
                        if couriers else None)
        self.malformed = 0
        self._connected = threading.Event()
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
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise ConnectionError(f"central receiver cannot reach {self.host}:{self.port}")
        self.store.sweep()
        if self.pass_on is not None:  # its first round hands over what a dead receiver left
            self.pass_on.start()

    def stop(self) -> None:
        """Disconnect and close the connection to the database."""
        self._client.disconnect()
        self._client.loop_stop()
        if self.pass_on is not None:
            self.pass_on.stop()
        self.store.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                    _p: Any) -> None:
        if reason.is_failure:
            log.warning("central: broker refused: %s", reason)
            return
        client.subscribe(f"$share/{self.group}/{self.prefix}/+/tx/#", qos=1)
        self._connected.set()

    def _answer(self, station: str, ack: Ack) -> None:
        payload = (sign_ack(ack, station, self.signing_key) if self.signing_key is not None
                   else ack.encode())
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
        except Exception:  # the receiver keeps serving; the station resends what went unanswered
            self.malformed += 1
            log.exception("central: failed to handle a message")

    def _handle(self, station: str, txid: str, kind: str, index: int | None,
                payload: bytes) -> None:
        if kind == "query":
            self._answer_passed_on(station, txid)
            return
        if kind == "chunk":
            assert index is not None
            self.store.put_chunk(txid, station, index, payload)
            return
        receipt = self.store.receipt_for(txid)
        if receipt is not None:
            if self.metrics is not None:
                self.metrics.duplicate()
            self._answer(station, Ack(txid, AckStatus.STORED, receipt=receipt))
            return
        meta = TransactionMeta.decode(payload)
        if meta.transaction_id != txid:
            raise MalformedMessage("meta names another transaction than its topic")
        if meta.size > MAX_TRANSACTION_BYTES:
            self._reject(station, txid, RejectReason.TOO_LARGE,
                         f"transaction too large ({meta.size} bytes)")
            return
        self.store.put_meta(station, meta)
        if kind == "end":
            self._complete(station, meta, time.monotonic() - self.store.age_s(txid))

    def _answer_passed_on(self, station: str, txid: str) -> None:
        """Where any receiver passed a transaction on; a station learns only about its own."""
        held = self.store.held(txid)
        body: dict[str, Any] = {"v": 1, "transaction_id": txid, "held": False, "passed_on": []}
        if held is not None and held["station"] == station:
            body.update(held=True, receipt=held["receipt"], stored_at=held["stored_at"],
                        manifest_version=held["manifest_version"],
                        shared_with=held["shared_with"], passed_on=held["passed_on"])
        self._client.publish(f"{self.prefix}/{station}/passed-on",
                             json.dumps(body, separators=(",", ":"), sort_keys=True).encode(),
                             qos=1)

    def _reject(self, station: str, txid: str, reason: RejectReason, text: str) -> None:
        self.store.forget(txid)
        if self.metrics is not None:
            self.metrics.rejected(reason)
        self._answer(station, Ack(txid, AckStatus.REJECTED, reason=text))

    def _complete(self, station: str, meta: TransactionMeta, started: float) -> None:
        txid = meta.transaction_id
        chunks = self.store.chunks(txid, meta.chunks)
        missing = [n for n in range(meta.chunks) if n not in chunks]
        if missing:
            self._answer(station, Ack(txid, AckStatus.MISSING, missing=tuple(missing)))
            return
        data = b"".join(chunks[n] for n in range(meta.chunks))
        if len(data) != meta.size or hashlib.sha256(data).hexdigest() != meta.sha256:
            if self.store.checksum_failed(txid) >= SHA_RETRIES:
                self._reject(station, txid, RejectReason.CHECKSUM,
                             "data does not match its checksum")
            else:
                self._answer(station, Ack(txid, AckStatus.MISSING,
                                          missing=tuple(range(meta.chunks))))
            return
        problems = self.validator(data) if self.validator else []
        if problems:
            self._reject(station, txid, RejectReason.INVALID_RECORD, "; ".join(problems)[:480])
            return
        receipt = {
            "receipt": f"R-{uuid.uuid4().hex[:16]}",
            "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "sha256": meta.sha256,
            "manifest_version": meta.manifest_version,
            "shared_with": [
                {"name": d.name, "purpose": d.purpose, "mandatory": d.mandatory}
                for d in self.destinations
            ],
        }
        won, receipt = self.store.hold(station, meta, data, receipt, self.client_id,
                                       pass_on=self.pass_on is not None)
        if won and self.pass_on is not None:
            self.pass_on.wake()
        if self.metrics is not None:
            if won:
                self.metrics.stored(len(data), time.monotonic() - started)
            else:
                self.metrics.duplicate()
        self._answer(station, Ack(txid, AckStatus.STORED, receipt=receipt))
