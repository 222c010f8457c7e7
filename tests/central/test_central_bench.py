"""`benchmarks/central_bench.py` still runs, at a small size: its figures are quoted in the README,
and anyone must be able to rerun them. A change elsewhere (signed acks) once broke it unnoticed.

Only correctness is asserted (every booking held exactly once, every message absorbed), never a
rate or a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.central.postgres import _bin
from tests.conftest import REPO, _need_mosquitto


def bench(*argv: str) -> dict:
    _need_mosquitto()
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "central_bench.py"), *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.rfind("\n{") + 1:])  # the report ends stdout


def test_fleet_one_receiver_and_two_shared_hold_every_booking_once() -> None:
    if _bin() is None:
        if os.environ.get("CI"):
            pytest.fail("postgresql is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("postgresql is not installed (apt-get install postgresql)")
    report = bench("fleet", "--stations", "6", "--bookings", "2", "--procs", "2")
    for run in ("one_receiver", "two_receivers"):
        assert report[run]["held"] == report[run]["expected"] == 12, report[run]
        assert report[run]["exactly_once"] is True


def test_telemetry_intake_absorbs_every_message() -> None:
    report = bench("telemetry", "--stations", "10", "--messages", "200", "--publishers", "2")
    assert report["exporter_absorbed"] == report["mosquitto_sub_received"] == 200, report
