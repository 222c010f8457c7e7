"""The whole station on one machine: booking processing time after the last capture, memory.

    .venv/bin/python benchmarks/station_bench.py [--bookings 3] [--mmap-threshold-kb N]

Runs the station in this process with the emulated livescan, the embedded broker and the
reference receiver (as the demo does), takes ten-print bookings through the capture session,
and reports for each: the time from the last accepted print to the booking being committed
(sequence check, segmentation reuse, WSQ, transaction, validation, encrypted commit), and the
process's peak resident memory (VmHWM), against the design budgets of 2 s and 300 MB.
``--mmap-threshold-kb 0`` runs with glibc's default allocator settings instead of the
station's (``system.malloc_mmap_threshold_kb``, see appliance/system/memory.py), to compare.
The process also holds the emulator's print generator, the embedded broker and the reference
receiver, which a station with a real scanner and a remote central does not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from appliance.app import Station
from appliance.config import StationConfig
from appliance.demo import demo_broker, prepare_state, take_print
from central.receiver import CentralReceiver


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(count: int, mmap_threshold_kb: int = 128) -> None:
    state = Path(tempfile.mkdtemp(prefix="bst-bench-"))
    creds, _ = prepare_state(state)
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    async with demo_broker(prefer="embedded") as broker:
        receiver = CentralReceiver(state / "central", host=broker.host, port=broker.port)
        await asyncio.to_thread(receiver.start)
        config = StationConfig.model_validate({
            "station": {"station_id": "bench", "data_dir": str(state / "station")},
            "store": {"min_free_mb": 16},
            "mqtt": {"host": broker.host, "port": broker.port},
            "web": {"port": 0},
            "records": {"profile": "local-tenprint"},
            "system": {"malloc_mmap_threshold_kb": mmap_threshold_kb},
        })
        station = Station(config)
        await station.start()
        print(f"after start: peak RSS {peak_rss_mb():.0f} MB")
        session = station.session
        assert session is not None
        for n in range(count):
            await session.start(f"BENCH-{n}")
            while session.current_step is not None:
                await take_print(session)
            started = time.perf_counter()
            try:
                await session.submit()
            except Exception:  # a sequence warning on synthetic prints: confirm, as the demo does
                await session.submit(confirm_sequence=True)
            elapsed = time.perf_counter() - started
            print(f"booking {n + 1}: last capture to committed {elapsed:.2f} s "
                  f"(budget 2 s on a Pi 4); peak RSS {peak_rss_mb():.0f} MB (budget 300 MB)")
        await station.stop()
        await asyncio.to_thread(receiver.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=3)
    parser.add_argument("--mmap-threshold-kb", type=int, default=128)
    args = parser.parse_args()
    asyncio.run(main(args.bookings, args.mmap_threshold_kb))
