"""A station's store under load, to be killed with SIGKILL at any moment by the crash tests.

Run as a script (``python tests/store/crash_child.py MODE ...``):

``zygote``
    Imports everything once, then for each ``run DB KEYHEX SEED LOG`` line on stdin forks a
    child that runs :func:`workload` until it is killed, answers ``pid N`` and then
    ``exit STATUS`` once the child is gone. Forking from a warm, single-threaded process makes a
    restart cost milliseconds instead of an interpreter start, so one test can kill hundreds.
``run DB KEYHEX SEED LOG``
    The workload in this process (for trying it by hand).
``rotate DB OLDHEX NEWHEX BATCH_ROWS PAUSE_S``
    A key rotation that prints ``batch N ROWS`` after each committed batch and pauses.

The workload commits bookings (directly and through drafts), acknowledges, rejects and retries
transactions as central would, purges, applies retention and takes backups. After each operation
the store confirms, it appends a line to LOG and fsyncs it: what the log says was confirmed must
be in the store after any kill (``tests/store/crash_check.py`` checks it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from appliance.domain import Booking, Impression, ImpressionType, Position, Subject  # noqa: E402
from appliance.store.crypto import BlobCipher  # noqa: E402
from appliance.store.drafts import DraftStore  # noqa: E402
from appliance.store.store import Store  # noqa: E402

SUBJECT = Subject(last_name="Crashcourse", first_name="Wilhelmina", date_of_birth="19700101",
                  sex="F")
OPS = ["commit", "draft", "ack", "reject", "retry", "purge", "retention", "audit", "backup"]
WEIGHTS = [30, 10, 28, 1, 5, 8, 5, 5, 2]


def booking_number(seed: int, n: int, prints: int, templates: int) -> str:
    """The number says how many prints and templates the booking must have when whole."""
    return f"CR-{seed}-{n}-p{prints}-t{templates}"


def planned(number: str) -> tuple[int, int]:
    """Prints and templates a booking number promises."""
    parts = number.split("-")
    return int(parts[3][1:]), int(parts[4][1:])


class DurableLog:
    """Append-only JSON lines, each fsynced before the next operation starts."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, **record: object) -> None:
        record["t"] = round(time.monotonic(), 4)
        os.write(self.fd, (json.dumps(record) + "\n").encode())
        os.fsync(self.fd)


def impression(rng: random.Random, position: int) -> Impression:
    image = np.random.default_rng(rng.getrandbits(32)).integers(0, 256, (24, 24), dtype=np.uint8)
    return Impression(position=Position(position),
                      impression_type=ImpressionType.ROLLED_LIVE_SCAN, image=image, ppi=500)


async def commit(store: Store, booking: Booking, rng: random.Random, log: DurableLog) -> str:
    prints, templates = planned(booking.booking_number)
    ordered = sorted(booking.impressions, key=lambda i: int(i.position))
    assert len(ordered) == prints
    tmpl = {imp.impression_id: {"iso19794-2": rng.randbytes(rng.randint(60, 300))}
            for imp in ordered[:templates]}
    transaction = b"CRASH:" + booking.booking_id.encode() + rng.randbytes(rng.randint(300, 6000))
    txid = await store.commit_booking(booking, transaction, templates=tmpl)
    log.write(op="commit", bid=booking.booking_id, txid=txid, prints=prints,
              templates=templates, sha=hashlib.sha256(transaction).hexdigest())
    return txid


async def workload(db: Path, key: bytes, seed: int, log_path: Path) -> None:
    """Operate the store until killed."""
    rng = random.Random(seed)
    log = DurableLog(log_path)
    log.write(op="starting")
    store = Store(db, BlobCipher(key), min_free_mb=0)
    store.open()
    log.write(op="opened")
    drafts = DraftStore(store)
    for found in await asyncio.to_thread(drafts.load):  # the kiosk offers drafts again
        prints, _ = planned(found.booking_number)
        have = {int(i.position) for i in found.impressions}
        for pos in range(1, prints + 1):
            if pos not in have:
                imp = impression(rng, pos)
                await drafts.accept(found, imp)
                found.impressions.append(imp)
                log.write(op="draft_accept", bid=found.booking_id, iid=imp.impression_id)
        await commit(store, found, rng, log)
    n = 0
    while True:
        n += 1
        op = rng.choices(OPS, WEIGHTS)[0]
        if op in ("commit", "draft"):
            prints = rng.randint(1, 4)
            number = booking_number(seed, n, prints, rng.randint(0, prints))
            booking = Booking(booking_number=number, subject=SUBJECT)
            if op == "commit":
                booking.impressions.extend(impression(rng, p) for p in range(1, prints + 1))
            else:
                await drafts.begin(booking)
                log.write(op="draft_begin", bid=booking.booking_id)
                for pos in range(1, prints + 1):
                    imp = impression(rng, pos)
                    await drafts.accept(booking, imp)
                    booking.impressions.append(imp)
                    log.write(op="draft_accept", bid=booking.booking_id, iid=imp.impression_id)
            await commit(store, booking, rng, log)
        elif op in ("ack", "reject", "retry"):
            due = await store.outbox_due(5)
            if not due:
                continue
            txid = rng.choice(due).transaction_id
            await store.mark_sending(txid)
            if op == "ack":
                if await store.mark_stored(txid, {"receipt": f"R-{n}"}):
                    log.write(op="stored", txid=txid)
            elif op == "reject":
                if await store.mark_rejected(txid, "test rejection"):
                    log.write(op="rejected", txid=txid)
            else:
                await store.mark_retry(txid, 0, "link down")
        elif op == "purge":
            count = await store.purge_delivered(timedelta(0))
            log.write(op="purge", count=count)
        elif op == "retention":
            later = datetime.now(UTC) + timedelta(days=400)
            result = await store.purge_expired_metadata(timedelta(days=365), now=later)
            log.write(op="retention", bookings=result.bookings, audit=result.audit_entries)
        elif op == "audit":
            await store.audit("officer", "login", {"n": n})
            log.write(op="audit")
        elif op == "backup":
            path = await store.backup_now(keep=2)
            log.write(op="backup", path=str(path))


def _run_child(db: Path, key: bytes, seed: int, log_path: Path) -> None:
    try:
        asyncio.run(workload(db, key, seed, log_path))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(3)
    os._exit(0)


def unsafe_synchronous(mode: str) -> None:
    """Open the store with ``PRAGMA synchronous=<mode>`` (for tests that must see a loss)."""
    from appliance.store import database, writer

    safe = database.connect

    def connect(path: Path):  # type: ignore[no-untyped-def]
        conn = safe(path)
        conn.execute(f"PRAGMA synchronous={mode}")
        return conn

    database.connect = writer.connect = connect  # type: ignore[assignment]


def zygote() -> None:
    """Fork one workload per request; report its pid and how it ended.

    ``BST_CRASH_SYNCHRONOUS=OFF`` in the environment makes the store skip its fsyncs: the
    harness must then find lost bookings, which shows that it can.
    """
    if os.environ.get("BST_CRASH_SYNCHRONOUS"):
        unsafe_synchronous(os.environ["BST_CRASH_SYNCHRONOUS"])
    devnull = os.open(os.devnull, os.O_WRONLY)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        _, db, keyhex, seed, log_path = words
        pid = os.fork()
        if pid == 0:
            os.dup2(devnull, 1)
            _run_child(Path(db), bytes.fromhex(keyhex), int(seed), Path(log_path))
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


async def rotate(db: Path, old: bytes, new: bytes, batch_rows: int, pause_s: float) -> None:
    """Rotate with progress lines, slowly enough to be killed in the middle."""
    store = Store(db, BlobCipher(new, previous=[old]))
    store.open()

    def on_batch(progress: object) -> None:
        print(f"batch {progress.batches} {progress.rows_done}", flush=True)  # type: ignore[attr-defined]
        time.sleep(pause_s)

    try:
        report = await store.rotate_key(batch_rows=batch_rows, on_batch=on_batch)
        print(f"done {report.completed}", flush=True)
    finally:
        store.close()


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "zygote":
        zygote()
    elif mode == "run":
        _run_child(Path(argv[1]), bytes.fromhex(argv[2]), int(argv[3]), Path(argv[4]))
    elif mode == "rotate":
        asyncio.run(rotate(Path(argv[1]), bytes.fromhex(argv[2]), bytes.fromhex(argv[3]),
                           int(argv[4]), float(argv[5])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
