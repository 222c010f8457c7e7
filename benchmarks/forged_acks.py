"""Forged acks on an open broker: how many bookings an attacker takes, with and without signing.

    python benchmarks/forged_acks.py                # 5 trials
    python benchmarks/forged_acks.py --trials 20

Each trial starts a local Mosquitto that anyone may publish on (the demo's broker before it
had passwords and an ACL), queues 4 bookings in a station while central is away, and plays the
attacker from the issue: a forged ``stored`` ack, a forged ``stored`` published *retained*
while the station is connected, a forged ``rejected``, and a ``stored`` signed by a key that is
not central's. Then the reference receiver comes back and the run waits until every booking has
an answer or 60 s have passed. It counts, per trial:

- **taken**: bookings whose delivery state a forgery set (marked stored with a forged receipt,
  or rejected with the forged reason) without central holding them;
- **lost**: bookings central does not hold and the station no longer queues (taken bookings
  are lost: their biometrics are purged after the grace period);
- **duplicated**: transaction ids central holds more than one copy of (files on disk);
- **refused**: acks the station refused (its ``acks_refused`` telemetry figure);
- **retained ignored**: retained messages the link dropped unread at a (re)subscription: a
  forgery published retained reaches a station that reconnects in between this way.

Two stations run side by side in the same trial, on separate brokers: **signed** (central's
public key configured, as every example config and the demo now are) and **unsigned** (the old
behaviour, ``allow_unsigned_acks = true``), so the table shows the attack working where it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import central_key, fill_store, free_port, plain_hooks, start_broker  # noqa: E402

from appliance.store.crypto import BlobCipher, new_key  # noqa: E402
from appliance.store.store import Store  # noqa: E402
from appliance.sync.config import MqttSection  # noqa: E402
from appliance.sync.protocol import Ack, AckStatus  # noqa: E402
from appliance.sync.receipts import sign_ack  # noqa: E402
from appliance.sync.service import SyncService  # noqa: E402
from central.commands import load_private_key  # noqa: E402
from central.receiver import CentralReceiver  # noqa: E402

BOOKINGS = 4
FORGED_RECEIPT = {"receipt": "R-forged", "stored_at": "2026-01-01T00:00:00+00:00",
                  "sha256": "0" * 64}


def publish(port: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


async def trial(workdir: Path, signed: bool, seed: int) -> dict[str, int]:
    port = free_port()
    broker = start_broker(workdir, port)
    store = Store(workdir / "station.db", BlobCipher(new_key()))
    store.open()
    service = None
    receiver = None
    try:
        keys = {"central_keys": (central_key(workdir),)} if signed else {
            "allow_unsigned_acks": True}
        config = MqttSection(host="127.0.0.1", port=port, reconnect_min_s=0.2,
                             reconnect_max_s=1.0, ack_timeout_s=1.0, **keys)
        await fill_store(store, BOOKINGS, 20_000, np.random.default_rng(seed))
        txids = [r[0] for r in store.read(lambda c: c.execute(
            "SELECT transaction_id FROM outbox ORDER BY rowid").fetchall())]
        service = SyncService("st-1", config, store, plain_hooks(store, "st-1"))
        service.start(asyncio.get_running_loop())
        while not service.link.connected:
            await asyncio.sleep(0.02)
        ack = "bst/st-1/ack"
        forged = [
            (Ack(txids[0], AckStatus.STORED, receipt=FORGED_RECEIPT).encode(), False),
            (Ack(txids[1], AckStatus.STORED, receipt=FORGED_RECEIPT).encode(), True),
            (Ack(txids[2], AckStatus.REJECTED, reason="forged").encode(), False),
            (sign_ack(Ack(txids[3], AckStatus.STORED, receipt=FORGED_RECEIPT), "st-1",
                      Ed25519PrivateKey.generate()), False),
        ]
        for payload, retain in forged:
            await asyncio.to_thread(publish, port, ack, payload, retain=retain)
        deadline = time.monotonic() + 30
        while (service.acks_refused + service.uploader.delivered
               + sum(store.outbox_state(t) == "rejected" for t in txids) < len(forged)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        receiver = CentralReceiver(workdir / "central", host="127.0.0.1", port=port,
                                   signing_key=load_private_key(
                                       workdir / "central-signing.key") if signed else None)
        await asyncio.to_thread(receiver.start)
        service.wake()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [store.outbox_state(t) for t in txids]
            if all(s in ("stored", "rejected") for s in states):
                break
            await asyncio.sleep(0.1)
        held = receiver.store.deliveries()
        taken = 0
        for booking in store.bookings():
            receipt = json.loads(booking.receipt) if booking.receipt else {}
            if receipt.get("receipt") == "R-forged" or booking.reason == "forged":
                taken += 1
        files = list((workdir / "central" / "transactions").rglob("*.an2"))
        queued = [t for t in txids if store.outbox_state(t) in ("queued", "sending")]
        return {"taken": taken,
                "lost": sum(1 for t in txids if t not in held and t not in queued),
                "duplicated": len(files) - len({f.stem for f in files}),
                "held": sum(1 for t in txids if t in held),
                "refused": service.acks_refused,
                "retained_ignored": service.link.counters.retained_ignored}
    finally:
        if service is not None:
            await service.stop()
        if receiver is not None:
            await asyncio.to_thread(receiver.stop)
        store.close()
        broker.terminate()
        broker.wait(10)


async def main(trials: int) -> None:
    print(f"load average: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
          f"{os.getloadavg()[2]:.1f} on {os.cpu_count()} CPUs")
    totals = {mode: {"taken": 0, "lost": 0, "duplicated": 0, "held": 0, "refused": 0,
                     "retained_ignored": 0}
              for mode in ("signed", "unsigned")}
    for n in range(trials):
        for mode in ("signed", "unsigned"):
            workdir = Path(tempfile.mkdtemp(prefix=f"forged-{mode}-"))
            try:
                found = await trial(workdir, mode == "signed", seed=n)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            for key, value in found.items():
                totals[mode][key] += value
            print(f"trial {n + 1} {mode:8}: {found}", flush=True)
    print("\n| station | trials | bookings | forged acks | taken by forgeries | lost | "
          "duplicated | held once at central | acks refused | retained ignored |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, t in totals.items():
        print(f"| {mode} | {trials} | {trials * BOOKINGS} | {trials * 4} | {t['taken']} | "
              f"{t['lost']} | {t['duplicated']} | {t['held']} | {t['refused']} | "
              f"{t['retained_ignored']} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    asyncio.run(main(parser.parse_args().trials))
