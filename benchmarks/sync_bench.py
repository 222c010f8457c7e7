"""Backlog drain vs. the broker's own throughput for the same bytes.

    python benchmarks/sync_bench.py                 # 1000 bookings of ~500 KB
    python benchmarks/sync_bench.py --count 100     # a quick run

Starts a local Mosquitto and the reference receiver (`python -m central.cli run`, its own
process, as central would be), queues N bookings in a station store, then times:

1. **station drain**: SyncService uploading the backlog (decrypt from SQLite, meta + chunks +
   end at QoS 1, window of transactions in flight), until the station's outbox holds a `stored`
   answer for every booking. Central reassembles, checks SHA-256, fsyncs and indexes each one
   before it answers, so this is end to end.
2. **paho raw**: one process publishing the same messages (same topics, same chunk bytes) at
   QoS 1 with paho's default in-flight window, no protocol, no storage; timed until a
   `mosquitto_sub` subscriber has received every message.
3. **mosquitto_pub -l**: the broker's own client. `mosquitto_pub` has no binary-safe way to send
   many messages from one process (`-l` splits stdin at newlines; one process per message would
   time process start-up, not the broker), so each chunk is sent as one base64 line: the same
   number of messages, 4/3 of the bytes on the wire. Timed until `mosquitto_sub` has them all.

Figures are bookings/s and MB/s of booking bytes (10^6 bytes), and the drain's ratio to each
reference. Preparation (committing the backlog) is timed separately and excluded.

The drain is durable at both ends: the station commits each state change with
`synchronous=FULL` and the receiver fsyncs file, directory and index before it answers, so on a
disk it is bound by fsync latency, which the references never pay. `--workdir /dev/shm/x` puts
both stores on tmpfs and shows what the protocol itself costs; `--window` sets how many
transactions are in flight (the station's `mqtt.window`, default 4).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.domain import Booking, Impression, ImpressionType, Position  # noqa: E402
from appliance.store.crypto import BlobCipher, new_key  # noqa: E402
from appliance.store.store import Store  # noqa: E402
from appliance.sync import telemetry  # noqa: E402
from appliance.sync.config import MqttSection  # noqa: E402
from appliance.sync.protocol import split  # noqa: E402
from appliance.sync.service import StationHooks, SyncService  # noqa: E402
from appliance.system.health import age_seconds  # noqa: E402

STATION_CPU: list[float] = []  # process CPU seconds of the station during the drain


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A local Mosquitto with room for our chunks; returns once it accepts connections."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_packet_size 1048576\nmax_queued_messages 1000000\n"
                    "max_inflight_messages 0\nset_tcp_nodelay true\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("process exited before listening") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.05)


def central_key(workdir: Path) -> Path:
    """Central's signing key pair in ``workdir`` (made once); returns the public key file.

    The receiver signs every ack and the stations verify each one, as in production.
    """
    from central.commands import write_keypair

    private, public = workdir / "central-signing.key", workdir / "central-signing.pub"
    if not private.exists():
        write_keypair(private, public)
    return public


def start_receiver(workdir: Path, port: int, client_id: str = "central-bench"
                   ) -> subprocess.Popen[str]:
    """The reference receiver as its own process (booking-central run), signing its acks."""
    central_key(workdir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "run", "--host", "127.0.0.1", "--port", str(port),
         "--dir", str(workdir / "central"), "--client-id", client_id,
         "--key", str(workdir / "central-signing.key")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening" not in line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"receiver did not start: {line} {err}")
    return proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tiny_booking(n: int) -> Booking:
    """A booking whose size is all in its transaction (the benchmark moves transactions)."""
    image = np.full((16, 16), 200, dtype=np.uint8)
    booking = Booking(booking_number=f"BENCH-{n}")
    booking.impressions.append(Impression(position=Position(1),
                                          impression_type=ImpressionType.ROLLED_LIVE_SCAN,
                                          image=image, ppi=500))
    return booking


async def fill_store(store: Store, count: int, size: int, rng: np.random.Generator
                     ) -> list[bytes]:
    payloads = []
    for n in range(count):
        payload = rng.bytes(size)
        await store.commit_booking(tiny_booking(n), payload)
        payloads.append(payload)
    return payloads


def link_config(port: int, window: int, chunk_size: int, central_public: Path) -> MqttSection:
    return MqttSection(host="127.0.0.1", port=port, window=window, chunk_size=chunk_size,
                       reconnect_min_s=0.2, reconnect_max_s=2.0, ack_timeout_s=30.0,
                       central_keys=(central_public,))


def plain_hooks(store: Store, station_id: str) -> StationHooks:
    def health() -> telemetry.Health:
        h = store.health()
        return telemetry.Health(station_id, h.queue_depth,
                                age_seconds(h.oldest_unsent_at), h.disk_free_mb,
                                "ready", h.audit_head, h.audit_entries, "synchronised", 0)

    return StationHooks(health=health, clock_trusted=lambda: True)


async def drain(workdir: Path, port: int, count: int, size: int, window: int, chunk_size: int,
                seed: int) -> tuple[float, float, list[bytes]]:
    store = Store(workdir / "station.db", BlobCipher(new_key()))
    store.open()
    try:
        t0 = time.perf_counter()
        payloads = await fill_store(store, count, size, np.random.default_rng(seed))
        prepare_s = time.perf_counter() - t0
        service = SyncService("bench-1", link_config(port, window, chunk_size,
                                                     central_key(workdir)),
                              store, plain_hooks(store, "bench-1"))
        service.uploader.pause()
        service.start(asyncio.get_running_loop())
        while not service.link.connected:
            await asyncio.sleep(0.02)
        t0, cpu0 = time.perf_counter(), time.process_time()
        service.uploader.resume()
        while (await asyncio.to_thread(store.health)).queue_depth:
            await asyncio.sleep(0.05)
        drain_s = time.perf_counter() - t0
        STATION_CPU.append(time.process_time() - cpu0)
        await service.stop()
        return prepare_s, drain_s, payloads
    finally:
        store.close()


def messages_of(payloads: list[bytes], chunk_size: int, prefix: str) -> list[tuple[str, bytes]]:
    """The same topics and bytes a station would send (meta and end as small JSON)."""
    out = []
    for n, payload in enumerate(payloads):
        txid = f"{n:032x}"
        base = f"{prefix}/tx/{txid}"
        out.append((f"{base}/meta", b'{"v":1}' * 40))
        out += [(f"{base}/chunk/{i}", c) for i, c in enumerate(split(payload, chunk_size))]
        out.append((f"{base}/end", b'{"v":1}' * 40))
    return out


def count_subscriber(port: int, topic: str, count: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                             "-q", "1", "-C", str(count), "-V", "mqttv5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)  # let it subscribe before the first message
    return proc


def paho_reference(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Publish every message at QoS 1 from one paho client; seconds until all are delivered."""
    import paho.mqtt.client as mqtt

    sub = count_subscriber(port, "ref-paho/#", len(messages))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-paho",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.perf_counter()
    infos = [client.publish(topic.replace("bench", "ref-paho", 1), payload, qos=1)
             for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    sub.wait(300)
    elapsed = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return elapsed


def mosquitto_pub_reference(port: int, messages: list[tuple[str, bytes]]) -> float:
    """`mosquitto_pub -l` at QoS 1 with one base64 line per message (same message count)."""
    sub = count_subscriber(port, "ref-pub", len(messages))
    lines = b"".join(base64.b64encode(payload) + b"\n" for _topic, payload in messages)
    t0 = time.perf_counter()
    pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "ref-pub",
                          "-q", "1", "-l", "-V", "mqttv5"], input=lines, capture_output=True,
                         check=True, timeout=600)
    sub.wait(300)
    elapsed = time.perf_counter() - t0
    if pub.returncode or sub.returncode:
        raise RuntimeError(f"mosquitto_pub/sub failed: {pub.stderr!r} {sub.stderr!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="bookings in the backlog")
    parser.add_argument("--size", type=int, default=500_000, help="bytes per booking")
    parser.add_argument("--window", type=int, default=MqttSection().window,
                        help="transactions in flight (mqtt.window)")
    parser.add_argument("--chunk-size", type=int, default=MqttSection().chunk_size)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    args = parser.parse_args()
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if not shutil.which(tool):
            print(f"sync_bench: {tool} not found (apt-get install mosquitto-clients)")
            return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    broker = start_broker(workdir, port)
    receiver = start_receiver(workdir, port)
    try:
        cpu0 = cpu_seconds(broker.pid), cpu_seconds(receiver.pid)
        prepare_s, drain_s, payloads = asyncio.run(drain(
            workdir, port, args.count, args.size, args.window, args.chunk_size, args.seed))
        cpu1 = cpu_seconds(broker.pid), cpu_seconds(receiver.pid)
        receiver.terminate()
        out, _err = receiver.communicate(timeout=30)
        held = out.strip().splitlines()[-1] if out.strip() else "(no summary)"
        messages = messages_of(payloads, args.chunk_size, "bench")
        paho_s = paho_reference(port, messages)
        pub_s = mosquitto_pub_reference(port, messages)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        broker.terminate()
        broker.wait(10)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    total_mb = args.count * args.size / 1e6
    print(f"backlog: {args.count} bookings x {args.size} B = {total_mb:.1f} MB; "
          f"chunk {args.chunk_size} B; window {args.window}; {len(messages)} messages")
    print(f"prepare (commit to the encrypted store, excluded): {prepare_s:.1f} s")
    print(f"receiver: {held}")
    rows = [("station drain (SyncService -> reference receiver, stored)", drain_s),
            ("paho raw QoS 1 publish loop -> mosquitto_sub", paho_s),
            ("mosquitto_pub -l (base64 lines) -> mosquitto_sub", pub_s)]
    for label, seconds in rows:
        print(f"{label:58s} {seconds:7.2f} s  {args.count / seconds:8.1f} bookings/s  "
              f"{total_mb / seconds:7.1f} MB/s")
    print(f"drain / paho raw: {paho_s / drain_s:.2f} of the raw throughput; "
          f"drain / mosquitto_pub: {pub_s / drain_s:.2f}")
    print(f"during the drain: broker CPU {cpu1[0] - cpu0[0]:.1f} s, "
          f"receiver CPU {cpu1[1] - cpu0[1]:.1f} s, station CPU {STATION_CPU[0]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
