"""Cut the power at random moments: what was not fsynced is lost, nothing confirmed may be.

SIGKILL (tests/store/test_crash.py) leaves the kernel's page cache alive, so every write the
process made still reaches the disk. A power cut does not: here the store lives on
``powercut_fs.py``, a FUSE file system that holds file contents in its own memory until they
are fsynced. Each cycle mounts it over the same backing folder, lets the crash workload run
(commits, drafts, central's answers, purges, retention, backups), then kills the file system
and the workload at once. The backing folder is then what a disk holds after the cut, and the
checker compares it with the workload's log, written and fsynced outside the cut file system.
``BST_POWERCUT_SECONDS`` (default 60) and ``BST_POWERCUT_CYCLES`` (default 40) bound the run;
``BST_POWERCUT_SEED`` replays one.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.store.crypto import new_key
from tests.store.crash_check import Expectations, check_store
from tests.store.test_crash import Zygote, wait_for_work

HERE = Path(__file__).resolve().parent
FUSERMOUNT = shutil.which("fusermount3")


def _need_fuse() -> None:
    if not (os.path.exists("/dev/fuse") and FUSERMOUNT):
        pytest.skip("no FUSE here (/dev/fuse and Debian's fuse3 are needed)")
    pytest.importorskip("mfusepy", reason="mfusepy (the test extra) is not installed")


class PowerCutMount:
    """One mount of the power-cut file system, until the power goes."""

    def __init__(self, backing: Path, mountpoint: Path, stderr: Path) -> None:
        self.mountpoint = mountpoint
        self._stderr = stderr.open("ab")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "powercut_fs.py"), str(backing),
                                      str(mountpoint)], stderr=self._stderr)
        deadline = time.monotonic() + 60
        while not os.path.ismount(mountpoint):
            assert self.proc.poll() is None, f"the file system did not mount: {stderr}"
            assert time.monotonic() < deadline, "the file system did not mount within 60 s"
            time.sleep(0.05)

    def cut(self) -> None:
        """The power goes: the cache dies with its process; the kernel lets go of the mount."""
        self.proc.kill()
        self.proc.wait()
        subprocess.run([FUSERMOUNT, "-u", "-z", str(self.mountpoint)], check=False,
                       capture_output=True)
        self._stderr.close()


def test_the_power_cut_file_system_forgets_what_was_not_fsynced(tmp_path: Path) -> None:
    """The tool must really lose data, or the test below proves nothing."""
    _need_fuse()
    backing, mnt = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir()
    mnt.mkdir()
    mount = PowerCutMount(backing, mnt, tmp_path / "fs.stderr")
    try:
        (mnt / "unsynced").write_bytes(b"x" * 10_000)
        with open(mnt / "synced", "wb") as fh:
            fh.write(b"y" * 10_000)
            fh.flush()
            os.fsync(fh.fileno())
            fh.write(b"z" * 5)  # after the fsync: lost
        assert (mnt / "unsynced").read_bytes() == b"x" * 10_000  # readable while powered
    finally:
        mount.cut()
    assert (backing / "unsynced").read_bytes() == b""
    assert (backing / "synced").read_bytes() == b"y" * 10_000


def power_cuts(tmp_path: Path, *, cycles_max: int, budget_s: float, base_seed: int,
               env: dict[str, str] | None = None) -> tuple[int, int, Expectations, list[str]]:
    """Cycles of run-then-cut; stops at the first broken invariant, which it returns."""
    rng = random.Random(base_seed)
    key = new_key()
    backing, mnt = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir()
    mnt.mkdir()
    expect = Expectations()
    zygote = Zygote(tmp_path / "children.stderr", env)
    started = time.monotonic()
    cycles = mid_log = 0
    problems: list[str] = []
    try:
        while cycles < cycles_max and (time.monotonic() - started < budget_s or cycles < 10):
            seed = base_seed + cycles
            log = tmp_path / f"run-{cycles:04d}.jsonl"  # on the real disk, fsynced per line
            mount = PowerCutMount(backing, mnt, tmp_path / "fs.stderr")
            pid = zygote.start(mnt / "station.db", key, seed, log)
            wait_for_work(log, rng)
            time.sleep(rng.uniform(0.0, 0.1))
            # the station dies first, so that no syscall of it can fail on a dead mount; its
            # unsynced writes sit in the file system's memory and die with it a moment later
            os.kill(pid, signal.SIGKILL)
            status = zygote.reap()
            mount.cut()
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                stderr = (tmp_path / "children.stderr").read_text()[-3000:]
                pytest.fail(f"seed {seed}: the workload stopped by itself ({status}):\n{stderr}")
            mid_log += expect.ingest(log) > 0
            problems = check_store(backing / "station.db", key, expect)
            cycles += 1
            if problems:
                problems = [f"seed {seed} (base {base_seed}), cycle {cycles}: {p}"
                            for p in problems]
                break
    finally:
        zygote.close()
        if os.path.ismount(mnt):
            subprocess.run([FUSERMOUNT, "-u", "-z", str(mnt)], check=False)
    return cycles, mid_log, expect, problems


def test_power_cut_at_random_points_never_loses_a_confirmed_booking(tmp_path: Path) -> None:
    _need_fuse()
    base_seed = int(os.environ.get("BST_POWERCUT_SEED", str(random.randrange(1 << 30))))
    cycles, mid_log, expect, problems = power_cuts(
        tmp_path, cycles_max=int(os.environ.get("BST_POWERCUT_CYCLES", "40")),
        budget_s=float(os.environ.get("BST_POWERCUT_SECONDS", "60")), base_seed=base_seed)
    assert not problems, problems[:5]
    counts = expect.counts
    assert mid_log > cycles // 5, f"too few cuts landed mid-workload ({mid_log}/{cycles})"
    for op in ("commit", "stored"):
        assert counts.get(op, 0) > 0, f"the workload never confirmed a {op!r}: {counts}"
    print(f"\npower-cut harness: {cycles} power cuts ({mid_log} after an operation was "
          f"confirmed), base seed {base_seed}, confirmed {counts}")


def test_the_harness_catches_a_store_that_skips_its_fsyncs(tmp_path: Path) -> None:
    """The same cuts on a store opened with synchronous=OFF must lose confirmed work."""
    _need_fuse()
    cycles, _mid, _expect, problems = power_cuts(
        tmp_path, cycles_max=40, budget_s=120, base_seed=7,
        env={"BST_CRASH_SYNCHRONOUS": "OFF"})
    assert problems, f"{cycles} power cuts of a store without fsync lost nothing"
    print(f"\nwithout fsync: broken after {cycles} cuts: {problems[0]}")
