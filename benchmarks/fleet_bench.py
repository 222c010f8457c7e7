"""A fleet against one broker and one receiver: everything delivered, how fast, at what CPU.

    python benchmarks/fleet_bench.py                       # 200 stations x 3 bookings x 50 KB
    python benchmarks/fleet_bench.py --stations 50 --bookings 2

Starts a local Mosquitto and the reference receiver (`python -m central.cli run`), then worker
processes that each run a share of the stations: a full SyncService (its own MQTT connection,
encrypted store, outbox) per station, all in one asyncio loop per process. Every station queues
its bookings while paused; at "go" all resume at once, as a fleet does when the broker comes
back. Reports the time until every outbox holds `stored`, checks that central holds every
booking exactly once, and the CPU seconds the broker and the receiver used meanwhile (utime +
stime from /proc/<pid>/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import (  # noqa: E402
    central_key,
    cpu_seconds,
    fill_store,
    free_port,
    link_config,
    plain_hooks,
    start_broker,
    start_receiver,
)

from appliance.store.crypto import BlobCipher, new_key  # noqa: E402
from appliance.store.store import Store  # noqa: E402
from appliance.sync.service import SyncService  # noqa: E402


async def worker(args: argparse.Namespace) -> None:
    """Run stations [first, first + count): queue, report ready, drain on 'go', report done."""
    loop = asyncio.get_running_loop()
    stations = []
    for n in range(args.first, args.first + args.count):
        station_id = f"fleet-{n:04d}"
        folder = args.workdir / station_id
        store = Store(folder / "station.db", BlobCipher(new_key()))
        store.open()
        await fill_store(store, args.bookings, args.size, np.random.default_rng(n))
        service = SyncService(station_id, link_config(args.port, args.window, args.chunk_size,
                                                      central_key(args.workdir)),
                              store, plain_hooks(store, station_id))
        service.uploader.pause()
        service.start(loop)
        stations.append((service, store))
    while not all(s.link.connected for s, _ in stations):
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu0 = time.process_time()
    for service, _ in stations:
        service.uploader.resume()
    expected = args.bookings * len(stations)
    while sum(s.uploader.delivered for s, _ in stations) < expected:
        await asyncio.sleep(0.05)  # counters, not store reads: the bench must not load the CPU
    depths = await asyncio.to_thread(lambda: [st.health().queue_depth for _, st in stations])
    if any(depths):
        raise RuntimeError(f"outboxes not empty after every `stored`: {sum(depths)} left")
    print(f"done {time.process_time() - cpu0:.2f}", flush=True)
    for service, store in stations:
        await service.stop()
        store.close()


def verify(central_dir: Path, expected: int) -> tuple[int, int]:
    """(transactions held, transactions delivered more than once) from the receiver's index."""
    db = sqlite3.connect(f"file:{central_dir / 'received.db'}?mode=ro", uri=True)
    try:
        held = db.execute("SELECT COUNT(*) FROM received").fetchone()[0]
        repeats = db.execute("SELECT COUNT(*) FROM received WHERE deliveries > 1").fetchone()[0]
    finally:
        db.close()
    return held, repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--bookings", type=int, default=3, help="queued per station")
    parser.add_argument("--size", type=int, default=50_000, help="bytes per booking")
    parser.add_argument("--procs", type=int, default=4, help="worker processes")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=130048)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args))
        return 0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    broker = start_broker(workdir, port)
    receiver = start_receiver(workdir, port, client_id="central-fleet")
    workers: list[subprocess.Popen[str]] = []
    try:
        share = -(-args.stations // args.procs)
        t_setup = time.perf_counter()
        for first in range(0, args.stations, share):
            workers.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", "--first", str(first), "--count",
                 str(min(share, args.stations - first)), "--port", str(port), "--workdir",
                 str(workdir), "--bookings", str(args.bookings), "--size", str(args.size),
                 "--window", str(args.window), "--chunk-size", str(args.chunk_size)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO))
        for w in workers:
            line = w.stdout.readline() if w.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not get ready: {line!r}")
        setup_s = time.perf_counter() - t_setup
        cpu0 = cpu_seconds(broker.pid), cpu_seconds(receiver.pid)
        t0 = time.perf_counter()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        station_cpu = 0.0
        for w in workers:
            line = w.stdout.readline() if w.stdout else ""
            if not line.startswith("done"):
                raise RuntimeError(f"a worker failed: {line!r}")
            station_cpu += float(line.split()[1])
        drain_s = time.perf_counter() - t0
        cpu1 = cpu_seconds(broker.pid), cpu_seconds(receiver.pid)
        for w in workers:
            w.wait(60)
        receiver.terminate()
        receiver.wait(30)
        expected = args.stations * args.bookings
        held, repeats = verify(workdir / "central", expected)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        if receiver.poll() is None:
            receiver.kill()
        broker.terminate()
        broker.wait(10)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    total_mb = expected * args.size / 1e6
    print(json.dumps({
        "stations": args.stations, "bookings_per_station": args.bookings,
        "booking_bytes": args.size, "worker_processes": len(workers),
        "setup_s (connect + queue, excluded)": round(setup_s, 1),
        "drain_s": round(drain_s, 2), "bookings_per_s": round(expected / drain_s, 1),
        "MB_per_s": round(total_mb / drain_s, 2),
        "central_holds": held, "expected": expected, "delivered_more_than_once": repeats,
        "all_delivered_exactly_once": held == expected,
        "broker_cpu_s": round(cpu1[0] - cpu0[0], 2),
        "receiver_cpu_s": round(cpu1[1] - cpu0[1], 2),
        "stations_cpu_s (all workers)": round(station_cpu, 2),
    }, indent=2))
    return 0 if held == expected else 1


if __name__ == "__main__":
    sys.exit(main())
