"""The invariants a store must hold after any crash, checked on the raw database file.

:class:`Expectations` gathers what the workload's durable logs say the store confirmed;
:func:`check_store` lists every broken invariant (an empty list means the store is sound):

* the file passes ``integrity_check`` and ``foreign_key_check``; the audit chain verifies;
* no partial booking: each has exactly the prints and templates its number promises, one
  transaction, one outbox row in a valid state, and blobs that all open (or all purged, and then
  only once central stored it); no booking is both a draft and committed;
* the outbox is consistent: every transaction has exactly one outbox row naming its booking;
* confirmed implies present: a logged commit is there unless central stored it (retention may
  then delete it); a logged ``stored`` or ``rejected`` answer is there; a logged accepted draft
  print is in the draft or in its committed booking.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from appliance.store import audit
from appliance.store.crypto import BlobCipher, associated_data
from appliance.store.errors import StoreError

VALID_STATES = {"queued", "sending", "stored", "rejected"}


@dataclass
class Expectations:
    """What the logs say was confirmed, plus what the store showed central had stored."""

    committed: dict[str, dict] = field(default_factory=dict)  # booking id -> commit record
    draft_prints: dict[str, set[str]] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)  # transaction ids
    rejected: set[str] = field(default_factory=set)
    acked_bookings: set[str] = field(default_factory=set)  # may be deleted by retention
    tx_booking: dict[str, str] = field(default_factory=dict)  # every transaction ever seen
    counts: dict[str, int] = field(default_factory=dict)

    def ingest(self, log: Path) -> int:
        """Read one run's log (a torn last line is ignored); returns the operations confirmed."""
        if not log.exists():
            return 0
        records = 0
        for line in log.read_text().split("\n")[:-1]:  # only newline-terminated lines
            rec = json.loads(line)
            op = rec["op"]
            records += op not in ("starting", "opened")
            self.counts[op] = self.counts.get(op, 0) + 1
            if op == "commit":
                self.committed[rec["bid"]] = rec
                self.tx_booking[rec["txid"]] = rec["bid"]
            elif op == "draft_accept":
                self.draft_prints.setdefault(rec["bid"], set()).add(rec["iid"])
            elif op == "stored":
                self.stored.add(rec["txid"])
            elif op == "rejected":
                self.rejected.add(rec["txid"])
        return records


def promised(number: str) -> tuple[int, int] | None:
    """Prints and templates a crash-workload number ``CR-seed-n-pP-tT`` promises."""
    parts = number.split("-")
    if len(parts) != 5 or parts[0] != "CR":
        return None
    return int(parts[3][1:]), int(parts[4][1:])


def _open(cipher: BlobCipher, blob: bytes | None, key_id: str, aad: bytes) -> bytes | None:
    return None if blob is None else cipher.open(blob, key_id, aad)


def check_store(db: Path, key: bytes, expect: Expectations, *, lossless: bool = False
                ) -> list[str]:
    """Every invariant the store breaks (see the module docstring).

    ``lossless``: the store keeps committed prints' lossless images (``keep_lossless``); by
    default a committed booking must hold none, only its transaction and templates.
    """
    if not db.exists():
        return [f"confirmed booking {b} lost: no database" for b in expect.committed]
    conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True, isolation_level=None)
    try:
        return _check(conn, BlobCipher(key), expect, lossless)
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, cipher: BlobCipher, expect: Expectations,
           lossless: bool) -> list[str]:
    problems: list[str] = []
    rows = conn.execute("PRAGMA integrity_check").fetchall()
    if rows != [("ok",)]:
        return [f"integrity_check: {rows[:3]}"]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "outbox" not in tables or "drafts" not in tables:  # killed before the schema existed
        return [f"confirmed booking {b} lost: no schema" for b in expect.committed]
    if fk := conn.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"foreign_key_check: {fk[:3]}")
    chain = audit.verify(conn)
    if not chain.ok:
        problems.append(f"audit chain broken at {chain.first_bad_seq}: {chain.problem}")

    drafts = {r[0] for r in conn.execute("SELECT booking_id FROM drafts")}
    present = {}
    for bid, number_enc, subject_enc, key_id, purged_at in conn.execute(
        "SELECT booking_id, booking_number_enc, subject_enc, key_id, biometrics_purged_at"
        " FROM bookings"
    ).fetchall():
        try:
            number = cipher.open(number_enc, key_id, associated_data(bid, bid, "number")).decode()
            cipher.open(subject_enc, key_id, associated_data(bid, bid, "subject"))
            problems += _check_booking(conn, cipher, bid, number, purged_at, lossless)
        except StoreError as exc:
            problems.append(f"booking {bid}: {exc}")
        if bid in drafts:
            problems.append(f"booking {bid} is both a draft and committed")
        present[bid] = number

    for (txid,) in conn.execute(
        "SELECT t.transaction_id FROM transactions t"
        " WHERE (SELECT COUNT(*) FROM outbox o WHERE o.transaction_id = t.transaction_id) != 1"
    ):
        problems.append(f"transaction {txid} has no outbox row")
    for (txid,) in conn.execute(
        "SELECT o.transaction_id FROM outbox o LEFT JOIN transactions t USING (transaction_id)"
        " WHERE t.transaction_id IS NULL OR t.booking_id != o.booking_id"
    ):
        problems.append(f"outbox row {txid} does not match a transaction of its booking")
    states = dict(conn.execute("SELECT transaction_id, state FROM outbox").fetchall())
    problems += [f"outbox row {t} in invalid state {s!r}" for t, s in states.items()
                 if s not in VALID_STATES]

    for did, number_enc, key_id in conn.execute(
        "SELECT booking_id, booking_number_enc, key_id FROM drafts"
    ).fetchall():
        try:
            cipher.open(number_enc, key_id, associated_data(did, did, "draft-number"))
        except StoreError as exc:
            problems.append(f"draft {did}: {exc}")
    draft_prints = {}
    for iid, did, blob, key_id in conn.execute(
        "SELECT impression_id, booking_id, image_enc, key_id FROM draft_impressions"
    ).fetchall():
        draft_prints[iid] = did
        try:
            cipher.open(blob, key_id, associated_data(did, iid, "draft-image"))
        except StoreError as exc:
            problems.append(f"draft print {iid}: {exc}")

    # What central stored may be deleted by a later run: remember it, and which booking each
    # transaction belongs to (a commit killed before its log line is still in the store, and a
    # later run may log central's "stored" for it).
    for txid, bid, state in conn.execute("SELECT transaction_id, booking_id, state FROM outbox"):
        expect.tx_booking[txid] = bid
        if state == "stored":
            expect.acked_bookings.add(bid)
    expect.acked_bookings.update(
        expect.tx_booking[t] for t in expect.stored if t in expect.tx_booking)

    problems += _check_confirmed(conn, expect, present, states, draft_prints)
    return problems


def _check_booking(conn: sqlite3.Connection, cipher: BlobCipher, bid: str, number: str,
                   purged_at: str | None, lossless: bool) -> list[str]:
    problems = []
    imps = conn.execute(
        "SELECT impression_id, image_enc, key_id FROM impressions WHERE booking_id = ?", (bid,)
    ).fetchall()
    tmpl = conn.execute(
        "SELECT t.impression_id, t.format, t.data_enc, t.key_id FROM templates t"
        " JOIN impressions i USING (impression_id) WHERE i.booking_id = ?", (bid,)
    ).fetchall()
    txs = conn.execute(
        "SELECT transaction_id, size, sha256, data_enc, key_id FROM transactions"
        " WHERE booking_id = ?", (bid,)
    ).fetchall()
    prints, templates = promised(number) or (len(imps), len(tmpl))
    if len(imps) != prints or len(tmpl) != templates or len(txs) != 1:
        return [f"partial booking {bid}: {len(imps)}/{prints} prints, {len(tmpl)}/{templates} "
                f"templates, {len(txs)} transactions"]
    txid, size, sha, tx_blob, tx_key = txs[0]
    outbox = conn.execute("SELECT state FROM outbox WHERE transaction_id = ?", (txid,)
                          ).fetchall()
    if len(outbox) != 1:
        return [f"booking {bid}: {len(outbox)} outbox rows"]
    images = [(b, k, associated_data(bid, i, "image")) for i, b, k in imps]
    if lossless:
        blobs = images
    elif any(b is not None for b, _, _ in images):
        return [f"booking {bid} holds lossless prints after its commit"]
    else:
        blobs = []
    blobs += [(b, k, associated_data(bid, i, f"template:{f}")) for i, f, b, k in tmpl]
    blobs.append((tx_blob, tx_key, associated_data(bid, txid, "transaction")))
    if purged_at is not None:
        if any(b is not None for b, _, _ in blobs):
            problems.append(f"booking {bid} marked purged but holds blobs")
        if outbox[0][0] != "stored":
            problems.append(f"booking {bid} purged before central stored it")
        return problems
    if any(b is None for b, _, _ in blobs):
        return [f"booking {bid} lost blobs without being purged"]
    for blob, key_id, aad in blobs:
        _open(cipher, blob, key_id, aad)
    data = cipher.open(tx_blob, tx_key, associated_data(bid, txid, "transaction"))
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        problems.append(f"booking {bid}: transaction does not match its size and sha256")
    return problems


def _check_confirmed(conn: sqlite3.Connection, expect: Expectations, present: dict[str, str],
                     states: dict[str, str], draft_prints: dict[str, str]) -> list[str]:
    problems = []
    for bid, rec in expect.committed.items():
        if bid not in present:
            if bid not in expect.acked_bookings:
                problems.append(f"confirmed booking {bid} lost before central stored it")
            continue
        row = conn.execute(
            "SELECT sha256 FROM transactions WHERE transaction_id = ?", (rec["txid"],)
        ).fetchone()
        if row is None or row[0] != rec["sha"]:
            problems.append(f"confirmed booking {bid} lost its transaction {rec['txid']}")
    for txid in expect.stored:
        if txid in states and states[txid] != "stored":
            problems.append(f"acknowledged transaction {txid} is {states[txid]!r}, not stored")
    for txid in expect.rejected:
        if states.get(txid) != "rejected":
            problems.append(f"rejected transaction {txid} is {states.get(txid)!r}")
    committed_prints = {r[0] for r in conn.execute("SELECT impression_id FROM impressions")}
    for bid, iids in expect.draft_prints.items():
        if bid in expect.acked_bookings:
            continue
        for iid in iids:
            if iid not in draft_prints and iid not in committed_prints:
                problems.append(f"accepted draft print {iid} of {bid} lost")
    return problems
