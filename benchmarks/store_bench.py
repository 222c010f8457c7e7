"""Booking commit latency and throughput of the encrypted store, against the same store without
encryption.

Each booking is real-sized: 14 impressions whose lossless copies are 10-30 KB each (random pixels,
which PNG cannot shrink, standing in for WSQ-sized images), 10 minutiae templates of 0.5-1.5 KB
and one ~500 KB ANSI/NIST-ITL transaction. ``Store.commit_booking`` is timed from call to
return: PNG encoding, AES-256-GCM sealing (in a worker thread), the single SQLite transaction
with WAL and ``synchronous=FULL``, and the hand-offs between threads. The same bookings are then
committed through a null cipher (this benchmark only) that stores plaintext, one booking to
each store in turn, and the ratio of the two is printed, with AES-GCM's raw sealing rate for
context. Throughput is bookings per second of commit time, one commit at a time (the station
commits one booking at a time).

    .venv/bin/python benchmarks/store_bench.py [--bookings 40] [--dir /var/lib/booking-station]

``--dir`` matters: the figures are dominated by fsync on the disk under it (use the data disk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from appliance.domain import Booking, Impression, ImpressionType, Position, Subject
from appliance.store.crypto import BlobCipher, associated_data, new_key
from appliance.store.store import Store, encode_png

SUBJECT = Subject(last_name="Bench", first_name="Mark", date_of_birth="19900101", sex="M")
TX_BYTES = 500 * 1024


class NullCipher:
    """Stores plaintext: the store's cost without encryption. Never use outside this file."""

    current_id = "null"
    key_ids = frozenset({"null"})

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, str]:
        return plaintext, self.current_id

    def open(self, blob: bytes, key_id: str, aad: bytes) -> bytes:
        return blob


def make_bookings(count: int, seed: int) -> list[tuple[Booking, bytes, dict]]:
    """Bookings, their transactions and templates (built before timing starts)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        booking = Booking(booking_number=f"BENCH-{n}", subject=SUBJECT)
        for pos in range(1, 15):
            side = int(rng.integers(100, 174))  # 10-30 KB of incompressible pixels
            image = rng.integers(0, 256, (side, side), dtype=np.uint8)
            kind = ImpressionType.ROLLED_LIVE_SCAN if pos <= 10 else ImpressionType.PLAIN_LIVE_SCAN
            booking.impressions.append(Impression(position=Position(pos), impression_type=kind,
                                                  image=image, ppi=500))
        templates = {imp.impression_id: {"iso19794-2": rng.bytes(int(rng.integers(512, 1536)))}
                     for imp in booking.impressions[:10]}
        out.append((booking, rng.bytes(TX_BYTES), templates))
    return out


async def interleaved(stores: dict[str, Store], bookings: list) -> dict[str, list[float]]:
    """Commit each booking to every store in turn (alternating who goes first): drift in the
    machine's load or the disk's speed falls on both sides alike."""
    latencies: dict[str, list[float]] = {name: [] for name in stores}
    names = list(stores)
    for n, (booking, tx, templates) in enumerate(bookings):
        for name in names if n % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            await stores[name].commit_booking(booking, tx, templates=templates)
            latencies[name].append(time.perf_counter() - t0)
    return latencies


def measure(folder: Path, ciphers: dict[str, object], bookings: list, warmup: list
            ) -> dict[str, dict[str, float]]:
    stores = {name: Store(folder / f"{name}.db", cipher)  # type: ignore[arg-type]
              for name, cipher in ciphers.items()}
    for store in stores.values():
        store.open()
    try:
        asyncio.run(interleaved(stores, warmup))
        latencies = asyncio.run(interleaved(stores, bookings))
    finally:
        for store in stores.values():
            store.close()
    payload = sum(len(tx) + sum(len(encode_png(i.image)) for i in b.impressions)
                  for b, tx, _ in bookings[:3]) / 3
    results = {}
    for name, lat in latencies.items():
        total = sum(lat)
        lat.sort()
        results[name] = {
            "mean_ms": statistics.fmean(lat) * 1000,
            "p50_ms": lat[len(lat) // 2] * 1000,
            "p95_ms": lat[max(0, int(len(lat) * 0.95) - 1)] * 1000,
            "per_s": len(lat) / total,
            "mb_per_s": len(lat) * payload / total / 1e6,
            "booking_kb": payload / 1024,
        }
    return results


def aes_rate() -> float:
    """Raw AES-256-GCM sealing rate in MB/s for a 500 KB blob."""
    cipher, blob = BlobCipher(new_key()), os.urandom(TX_BYTES)
    aad = associated_data("b", "t", "transaction")
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.5:
        cipher.seal(blob, aad)
        n += 1
    return n * len(blob) / (time.perf_counter() - t0) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    args = parser.parse_args()
    bookings = make_bookings(args.bookings, seed=1)
    warmup = make_bookings(3, seed=2)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        results = measure(Path(folder), {"aes-256-gcm": BlobCipher(new_key()),
                                         "null": NullCipher()}, bookings, warmup)
    enc, null = results["aes-256-gcm"], results["null"]
    print(f"store commit benchmark: {args.bookings} bookings of {enc['booking_kb']:.0f} KiB "
          f"(14 images of 10-30 KB, 10 templates, one 500 KB transaction)")
    print(f"{'cipher':<12} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'bookings/s':>11} "
          f"{'MB/s':>7}")
    for name, r in results.items():
        print(f"{name:<12} {r['mean_ms']:8.1f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} "
              f"{r['per_s']:11.1f} {r['mb_per_s']:7.1f}")
    print(f"encrypted / null: mean latency x{enc['mean_ms'] / null['mean_ms']:.2f}, "
          f"throughput x{enc['per_s'] / null['per_s']:.2f}")
    print(f"raw AES-256-GCM seal rate: {aes_rate():.0f} MB/s")
    t0 = time.perf_counter()
    for booking, _, _ in bookings[:10]:
        for imp in booking.impressions:
            encode_png(imp.image)
    print(f"PNG encoding inside each commit: {(time.perf_counter() - t0) * 100:.1f} ms "
          "per booking")


if __name__ == "__main__":
    main()
