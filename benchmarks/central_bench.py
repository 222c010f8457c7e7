"""Central under a fleet: one receiver against two shared ones, and the metrics side's intake.

    python benchmarks/central_bench.py fleet --stations 1000 --bookings 1
    python benchmarks/central_bench.py telemetry --stations 1000 --messages 50000

``fleet`` runs the same fleet twice in one invocation, each time against a fresh broker: first
the reference single receiver (``booking-central run --dir``, SQLite), then two shared receivers
(``booking-central run --postgres``, MQTT 5 shared subscription, a PostgreSQL cluster started for
the run). ``fault`` runs two shared receivers only and SIGKILLs one of them at random moments
(restarting it) until the fleet has drained, then checks every booking is held exactly once.
Worker processes each run a share of the stations (a full SyncService per station);
every station queues its bookings while paused, then all resume at once. It reports bookings
held per second, end-to-end latency percentiles (from "go" to each booking's ``stored`` at its
station), exactly-once checks, peak memory of every central process, and the ratios two/one.

``telemetry`` publishes health messages as a fleet does, from several processes, while two
subscribers take the same stream side by side: ``booking-central metrics`` (the FleetWatch, read
through its /metrics counter) and the reference ``mosquitto_sub``. It reports messages per
second each absorbed and the ratio exporter/mosquitto_sub, and the exporter's peak memory.

Both print the load average before and after: the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procmem import status_mb  # noqa: E402
from sync_bench import (  # noqa: E402
    central_key,
    fill_store,
    free_port,
    link_config,
    start_broker,
)

from appliance.store.crypto import BlobCipher, new_key  # noqa: E402
from appliance.store.store import Store  # noqa: E402
from appliance.sync import telemetry  # noqa: E402
from appliance.sync.service import StationHooks, SyncService  # noqa: E402
from appliance.system.health import Health, age_seconds  # noqa: E402


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---- fleet ----------------------------------------------------------------------------------

async def worker(args: argparse.Namespace) -> None:
    """Run stations [first, first + count): queue, 'ready', drain on 'go', print latencies."""
    loop = asyncio.get_running_loop()
    stations = []
    latencies: list[float] = []
    go = [0.0]

    def hooks(store: Store, station_id: str) -> StationHooks:
        def health() -> telemetry.Health:
            h = store.health()
            return Health(station_id, h.queue_depth, age_seconds(h.oldest_unsent_at),
                          h.disk_free_mb, "ready", h.audit_head, h.audit_entries,
                          "synchronised", 0)

        def events(event: dict) -> None:
            if event.get("type") == "delivery" and event.get("state") == "stored":
                latencies.append(time.perf_counter() - go[0])

        return StationHooks(health=health, clock_trusted=lambda: True, events=events)

    for n in range(args.first, args.first + args.count):
        station_id = f"fleet-{n:04d}"
        store = Store(args.workdir / station_id / "station.db", BlobCipher(new_key()))
        store.open()
        await fill_store(store, args.bookings, args.size, np.random.default_rng(n))
        cfg = link_config(args.port, 4, 130048, central_key(args.workdir)).model_copy(
            update={"ack_timeout_s": 10.0})
        service = SyncService(station_id, cfg, store, hooks(store, station_id))
        service.uploader.pause()
        service.start(loop)
        stations.append((service, store))
    while not all(s.link.connected for s, _ in stations):
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    go[0] = time.perf_counter()
    for service, _ in stations:
        service.uploader.resume()
    expected = args.bookings * len(stations)
    while len(latencies) < expected:
        await asyncio.sleep(0.05)
    depths = await asyncio.to_thread(lambda: [st.health().queue_depth for _, st in stations])
    if any(depths):
        raise RuntimeError(f"outboxes not empty after every `stored`: {sum(depths)} left")
    print("done " + json.dumps({"latencies": latencies,
                                "vmhwm_mib": status_mb("VmHWM", os.getpid())}), flush=True)
    for service, store in stations:
        await service.stop()
        store.close()


RECEIVERS = {"one": ["central-1"], "two": ["central-a", "central-b"]}


def start_receiver(mode: str, name: str, port: int, workdir: Path, dsn: str | None
                   ) -> subprocess.Popen[str]:
    where = ["--dir", str(workdir / "central")] if mode == "one" else ["--postgres", str(dsn)]
    central_key(workdir)  # the receivers sign every ack; the stations verify each one
    proc = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "run", "--host", "127.0.0.1", "--port",
         str(port), "--client-id", name, "--key", str(workdir / "central-signing.key"),
         *where], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening" not in line:
        raise RuntimeError(f"receiver {name} did not start: {line!r}")
    return proc


def start_receivers(mode: str, port: int, workdir: Path, dsn: str | None
                    ) -> list[subprocess.Popen[str]]:
    return [start_receiver(mode, name, port, workdir, dsn) for name in RECEIVERS[mode]]


def held(mode: str, workdir: Path, dsn: str | None) -> tuple[int, int]:
    """(rows held, distinct transaction ids held)."""
    if mode == "one":
        db = sqlite3.connect(f"file:{workdir / 'central' / 'received.db'}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM received"
                              ).fetchone()
        finally:
            db.close()
    import psycopg

    with psycopg.connect(str(dsn)) as db:
        return db.execute("SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM held").fetchone()


def fleet_once(args: argparse.Namespace, mode: str, dsn: str | None,
               kill_seed: int | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"central-bench-{mode}-"))
    port = free_port()
    broker = start_broker(workdir, port)
    receivers = start_receivers(mode, port, workdir, dsn)
    workers: list[subprocess.Popen[str]] = []
    try:
        share = -(-args.stations // args.procs)
        for first in range(0, args.stations, share):
            workers.append(subprocess.Popen(
                [sys.executable, __file__, "worker", "--first", str(first), "--count",
                 str(min(share, args.stations - first)), "--port", str(port), "--workdir",
                 str(workdir), "--bookings", str(args.bookings), "--size", str(args.size)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO))
        for w in workers:
            line = w.stdout.readline() if w.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not get ready: {line!r}")
        t0 = time.perf_counter()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        lines: list[str] = []
        readers = [threading.Thread(target=lambda w=w: lines.append(
            w.stdout.readline() if w.stdout else ""), daemon=True) for w in workers]
        for reader in readers:
            reader.start()
        kills = 0
        if kill_seed is not None:  # SIGKILL a random receiver at random moments, restart it
            rng = np.random.default_rng(kill_seed)
            while any(r.is_alive() for r in readers):
                time.sleep(rng.uniform(0.5, 3.0))
                if not any(r.is_alive() for r in readers):
                    break
                i = int(rng.integers(len(receivers)))
                receivers[i].kill()
                receivers[i].wait(30)
                kills += 1
                time.sleep(rng.uniform(0.2, 2.0))
                receivers[i] = start_receiver(mode, RECEIVERS[mode][i], port, workdir, dsn)
        for reader in readers:
            reader.join()
        drain_s = time.perf_counter() - t0
        latencies: list[float] = []
        worker_mib: list[float] = []
        for line in lines:
            if not line.startswith("done "):
                raise RuntimeError(f"a worker failed: {line[:200]!r}")
            report = json.loads(line[5:])
            latencies += report["latencies"]
            worker_mib.append(report["vmhwm_mib"])
        memory = {f"receiver {i + 1} VmHWM MiB": round(status_mb("VmHWM", r.pid), 1)
                  for i, r in enumerate(receivers)}
        memory["broker VmHWM MiB"] = round(status_mb("VmHWM", broker.pid), 1)
        # the stations' side, not central's: each worker process runs a share of the fleet
        memory["largest station worker VmHWM MiB"] = round(max(worker_mib), 1)
        memory["stations per worker"] = share
        for w in workers:
            w.wait(120)
        rows, distinct = held(mode, workdir, dsn)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        for r in receivers:
            if r.poll() is None:
                r.send_signal(signal.SIGTERM)
                r.wait(30)
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    expected = args.stations * args.bookings
    q = statistics.quantiles(latencies, n=100)
    return {"receivers": 1 if mode == "one" else 2,
            "store": "SQLite" if mode == "one" else "PostgreSQL",
            "drain_s": round(drain_s, 2), "bookings_per_s": round(expected / drain_s, 1),
            "latency_p50_s": round(q[49], 3), "latency_p95_s": round(q[94], 3),
            "latency_p99_s": round(q[98], 3),
            "held": rows, "expected": expected, "receiver_kills": kills,
            "exactly_once": rows == distinct == expected, **memory}


def fleet(args: argparse.Namespace) -> int:
    from tests.central.postgres import postgres_cluster

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    before = loadavg()
    one = fleet_once(args, "one", None)
    with postgres_cluster() as dsn:
        two = fleet_once(args, "two", dsn)
    print(json.dumps({
        "stations": args.stations, "bookings_per_station": args.bookings,
        "booking_bytes": args.size, "worker_processes": args.procs,
        "one_receiver": one, "two_receivers": two,
        "ratio_two_over_one": {
            "bookings_per_s": round(two["bookings_per_s"] / one["bookings_per_s"], 2),
            "latency_p95": round(two["latency_p95_s"] / one["latency_p95_s"], 2)},
        "loadavg_before": before, "loadavg_after": loadavg(), "cpus": os.cpu_count(),
    }, indent=2))
    return 0 if one["exactly_once"] and two["exactly_once"] else 1


def fault(args: argparse.Namespace) -> int:
    """Two shared receivers, one SIGKILLed at random moments while the fleet drains."""
    from tests.central.postgres import postgres_cluster

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    before = loadavg()
    with postgres_cluster() as dsn:
        two = fleet_once(args, "two", dsn, kill_seed=args.seed)
    print(json.dumps({
        "stations": args.stations, "bookings_per_station": args.bookings,
        "booking_bytes": args.size, "worker_processes": args.procs, "two_receivers": two,
        "loadavg_before": before, "loadavg_after": loadavg(), "cpus": os.cpu_count(),
    }, indent=2))
    return 0 if two["exactly_once"] and two["receiver_kills"] else 1


# ---- telemetry ------------------------------------------------------------------------------

def publisher(args: argparse.Namespace) -> None:
    """Publish ``count`` health messages over stations [first, first + stations), QoS 0."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    bodies = [(f"bst-telemetry/fleet-{n:04d}/health",
               Health(f"fleet-{n:04d}", n % 7, 12.0, 9000, "ready", "0" * 64, 10,
                      "synchronised", 1, disk_total_mb=20000, bookings_today=n % 30).encode())
              for n in range(args.first, args.first + args.stations)]
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(args.count):
        topic, body = bodies[i % len(bodies)]
        client.publish(topic, body, qos=0)
    client.loop_stop()
    client.disconnect()


def exporter_count(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    found = re.search(r"^bst_fleet_telemetry_messages_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def telemetry_intake(args: argparse.Namespace) -> int:
    before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="central-bench-telemetry-"))
    port, http = free_port(), free_port()
    broker = start_broker(workdir, port)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "metrics", "--port", str(port), "--listen-port",
         str(http)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reference = subprocess.Popen(
        [shutil.which("mosquitto_sub") or "mosquitto_sub", "-p", str(port), "-t",
         "bst-telemetry/#", "-q", "0", "-F", "%t"], stdout=subprocess.PIPE)
    seen = [0, 0.0]

    def count_reference() -> None:
        assert reference.stdout is not None
        for _ in reference.stdout:
            seen[0] += 1
            seen[1] = time.perf_counter()

    pubs: list[subprocess.Popen[str]] = []
    try:
        if "central fleet" not in (exporter.stdout.readline() if exporter.stdout else ""):
            raise RuntimeError(f"exporter did not start: {exporter.stderr.read()}")
        threading.Thread(target=count_reference, daemon=True).start()
        time.sleep(1.0)  # mosquitto_sub subscribes
        share = -(-args.stations // args.publishers)
        per = args.messages // args.publishers
        for first in range(0, args.stations, share):
            pubs.append(subprocess.Popen(
                [sys.executable, __file__, "publisher", "--port", str(port), "--first",
                 str(first), "--stations", str(min(share, args.stations - first)), "--count",
                 str(per)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO))
        for p in pubs:
            if (p.stdout.readline() if p.stdout else "").strip() != "ready":
                raise RuntimeError("a publisher did not get ready")
        total = per * len(pubs)
        t0 = time.perf_counter()
        for p in pubs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in pubs:
            p.wait(600)
        last, last_change, exporter_done = 0.0, time.perf_counter(), 0.0
        while time.perf_counter() - max(last_change, seen[1]) < 3.0:  # both settled
            time.sleep(0.2)
            now = exporter_count(http)
            if now != last:
                last, last_change = now, time.perf_counter()
            if now >= total and not exporter_done:
                exporter_done = time.perf_counter()
        exporter_s = (exporter_done or last_change) - t0
        reference_s = seen[1] - t0
        memory = round(status_mb("VmHWM", exporter.pid), 1)
    finally:
        for p in pubs:
            p.wait(60)
        exporter.send_signal(signal.SIGTERM)
        exporter.wait(30)
        reference.terminate()
        reference.wait(10)
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    exporter_rate, reference_rate = last / exporter_s, seen[0] / reference_s
    print(json.dumps({
        "stations": args.stations, "messages_published": total,
        "publishers": len(pubs),
        "exporter_absorbed": int(last), "exporter_msgs_per_s": round(exporter_rate),
        "mosquitto_sub_received": seen[0], "mosquitto_sub_msgs_per_s": round(reference_rate),
        "ratio_exporter_over_mosquitto_sub": round(exporter_rate / reference_rate, 2),
        "exporter_VmHWM_MiB": memory,
        "loadavg_before": before, "loadavg_after": loadavg(), "cpus": os.cpu_count(),
    }, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fleet", help="one receiver against two shared receivers")
    f.add_argument("--stations", type=int, default=1000)
    f.add_argument("--bookings", type=int, default=1, help="queued per station")
    f.add_argument("--size", type=int, default=20_000, help="bytes per booking")
    f.add_argument("--procs", type=int, default=4, help="worker processes")
    k = sub.add_parser("fault", help="two shared receivers, one killed at random, exactly once")
    k.add_argument("--stations", type=int, default=200)
    k.add_argument("--bookings", type=int, default=2, help="queued per station")
    k.add_argument("--size", type=int, default=20_000, help="bytes per booking")
    k.add_argument("--procs", type=int, default=4, help="worker processes")
    k.add_argument("--seed", type=int, default=2028, help="when to kill which receiver")
    t = sub.add_parser("telemetry", help="the metrics side's intake against mosquitto_sub")
    t.add_argument("--stations", type=int, default=1000)
    t.add_argument("--messages", type=int, default=50_000)
    t.add_argument("--publishers", type=int, default=4)
    w = sub.add_parser("worker")
    for name in ("--first", "--count", "--port", "--bookings", "--size"):
        w.add_argument(name, type=int, default=0)
    w.add_argument("--workdir", type=Path)
    p = sub.add_parser("publisher")
    for name in ("--first", "--stations", "--count", "--port"):
        p.add_argument(name, type=int, default=0)
    args = parser.parse_args()
    if args.mode == "worker":
        asyncio.run(worker(args))
        return 0
    if args.mode == "publisher":
        publisher(args)
        return 0
    if args.mode == "fault":
        return fault(args)
    return fleet(args) if args.mode == "fleet" else telemetry_intake(args)


if __name__ == "__main__":
    sys.exit(main())
