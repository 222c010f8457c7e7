"""Kill the store with SIGKILL at random moments, hundreds of times; nothing confirmed is lost.

A warm zygote process (``crash_child.py zygote``) forks one workload per cycle; the test kills
it after a random delay, then checks the raw database against what the workload's fsynced log
says was confirmed (``crash_check.py``). The loop is bounded by a cycle count and a time budget
(``BST_CRASH_SECONDS``, default 45 s; ``BST_CRASH_CYCLES``, default 400) so the suite stays
short; ``BST_CRASH_SEED`` replays a run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.store.crypto import BlobCipher, new_key
from appliance.store.drafts import DraftStore
from appliance.store.store import Store
from tests.store.conftest import make_booking
from tests.store.crash_check import Expectations, check_store

HERE = Path(__file__).resolve().parent
CHILD = HERE / "crash_child.py"
REPO = HERE.parents[1]


class Zygote:
    """The warm process that forks workloads for us to kill."""

    def __init__(self, stderr: Path, env: dict[str, str] | None = None) -> None:
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), "zygote"], cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            env={**os.environ, **(env or {})},
        )

    def start(self, db: Path, key: bytes, seed: int, log: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"run {db} {key.hex()} {seed} {log}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("pid "), f"zygote said {line!r}"
        return int(line.split()[1])

    def reap(self) -> int:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("exit "), f"zygote said {line!r}"
        return int(line.split()[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def wait_for_work(log: Path, rng: random.Random, timeout_s: float = 120.0) -> None:
    """Let the workload confirm a random number of operations (0 to 3) before the kill.

    Kills then land at random points of the work, not of the start-up, however slow the
    machine is; one run in five is killed at once (while the store opens).
    """
    if rng.random() < 0.2:
        return
    wanted = rng.randrange(4)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists():
            lines = log.read_text().split("\n")[:-1]
            if '"opened"' in "".join(lines[:2]) and len(lines) - 2 >= wanted:
                return
        time.sleep(0.005)


def test_sigkill_at_random_points_never_loses_a_confirmed_booking(tmp_path: Path) -> None:
    budget_s = float(os.environ.get("BST_CRASH_SECONDS", "45"))
    max_cycles = int(os.environ.get("BST_CRASH_CYCLES", "400"))
    base_seed = int(os.environ.get("BST_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(base_seed)
    key = new_key()
    db = tmp_path / "station.db"
    expect = Expectations()
    zygote = Zygote(tmp_path / "children.stderr")
    started = time.monotonic()
    cycles = mid_log = 0
    try:
        while cycles < max_cycles and (time.monotonic() - started < budget_s or cycles < 20):
            seed = base_seed + cycles
            log = tmp_path / f"run-{cycles:04d}.jsonl"
            pid = zygote.start(db, key, seed, log)
            wait_for_work(log, rng)
            time.sleep(rng.uniform(0.0, 0.1))
            os.kill(pid, signal.SIGKILL)
            status = zygote.reap()
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                stderr = (tmp_path / "children.stderr").read_text()[-3000:]
                pytest.fail(f"seed {seed}: the workload stopped by itself ({status}):\n{stderr}")
            mid_log += expect.ingest(log) > 0
            problems = check_store(db, key, expect)
            assert not problems, f"seed {seed} (base {base_seed}), cycle {cycles}: {problems[:5]}"
            cycles += 1
    finally:
        zygote.close()
    # the harness really exercised the store: kills landed while operations were confirmed
    counts = expect.counts
    assert mid_log > cycles // 5, f"too few kills landed mid-workload ({mid_log}/{cycles})"
    for op in ("commit", "draft_accept", "stored", "purge", "retention"):
        assert counts.get(op, 0) > 0, f"the workload never confirmed a {op!r}: {counts}"
    print(f"\ncrash harness: {cycles} SIGKILLs ({mid_log} after an operation was confirmed),"
          f" base seed {base_seed}, confirmed {counts}")


def test_checker_sees_partial_bookings_and_lost_commits(tmp_path: Path) -> None:
    """The checker must be able to fail: damage copies of a sound store in each way it looks for."""
    key = new_key()
    sound = tmp_path / "sound.db"
    store = Store(sound, BlobCipher(key))
    store.open()
    booking = make_booking("CR-1-1-p3-t0")
    txid = asyncio.run(store.commit_booking(booking, b"T" * 500))
    draft = make_booking("CR-1-2-p2-t0", prints=2)
    asyncio.run(DraftStore(store).begin(draft))
    store.close()
    confirmed = {booking.booking_id: {"txid": txid, "sha": hashlib.sha256(b"T" * 500).hexdigest()}}
    assert check_store(sound, key, Expectations(committed=dict(confirmed))) == []

    def damaged(*statements: str) -> list[str]:
        db = tmp_path / f"damaged-{len(list(tmp_path.iterdir()))}.db"
        shutil.copy(sound, db)
        conn = sqlite3.connect(db, isolation_level=None)  # foreign keys off, as a bug would
        for sql in statements:
            conn.execute(sql)
        conn.close()
        return check_store(db, key, Expectations(committed=dict(confirmed)))

    first = booking.impressions[0].impression_id
    assert damaged(f"DELETE FROM impressions WHERE impression_id = '{first}'") == [
        f"partial booking {booking.booking_id}: 2/3 prints, 0/0 templates, 1 transactions"]
    assert any("has no outbox row" in p for p in damaged("DELETE FROM outbox"))
    assert any("invalid state" in p for p in damaged("UPDATE outbox SET state = 'lost'"))
    assert any("both a draft and committed" in p for p in damaged(
        f"UPDATE drafts SET booking_id = '{booking.booking_id}'"))
    assert any("lost blobs" in p for p in damaged("UPDATE transactions SET data_enc = NULL"))
    assert any("holds lossless prints" in p for p in damaged(
        "UPDATE impressions SET image_enc = X'00'"))  # kept past the commit, unasked
    assert any("audit chain broken" in p for p in damaged(
        "UPDATE audit_log SET actor = 'someone else'"))
    assert damaged("DELETE FROM outbox", "DELETE FROM transactions", "DELETE FROM templates",
                   "DELETE FROM quality_reports", "DELETE FROM impressions",
                   "DELETE FROM bookings") == [
        f"confirmed booking {booking.booking_id} lost before central stored it"]
