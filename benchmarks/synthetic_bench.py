"""How fast the synthetic fingerprint generator is: ms per master, impression, roll frame, slap.

Run: .venv/bin/python benchmarks/synthetic_bench.py [--repeat N] [--samples DIR]

Prints the median and best wall time and the median CPU time of each step on this machine (the
generator is single-threaded: numpy's FFT does not thread and no BLAS call is made). On a busy
machine trust the best and CPU columns. With --samples it also writes sample PNGs (flat, dry,
wet, rolled, roll frame, four-finger slap, thumbs) to DIR for a look by eye.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from appliance.domain import SLAP_FINGERS, Position
from drivers.synthetic import FingerClass, Hand, generate_master, rolled_sequence, slap


def timed(label: str, step: Callable[[int], object], repeat: int) -> float:
    wall, cpu = [], []
    for i in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(i)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    print(
        f"{label:<34} median {statistics.median(wall):8.1f} ms   best {min(wall):8.1f} ms"
        f"   cpu {statistics.median(cpu):8.1f} ms   (n={repeat})"
    )
    return statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--samples", type=Path, default=None)
    args = parser.parse_args()
    n = args.repeat

    classes = list(FingerClass)

    def master(i: int) -> None:
        generate_master.cache_clear()
        generate_master(10_000 + i, classes[i % len(classes)])

    timed("master finger 560x640", master, max(3, n // 2))
    finger = generate_master(7, FingerClass.LEFT_LOOP)
    rng = np.random.default_rng(0)
    timed("flat impression 400x500", lambda i: finger.impression(rng), n * 2)
    timed("rolled impression 800x750", lambda i: finger.impression(rng, rolled=True), n)
    frames = 20
    roll = timed(
        f"live roll of {frames} frames 800x750",
        lambda i: [None for _ in rolled_sequence(finger, rng, frames)],
        max(2, n // 4),
    )
    print(f"{'  = per frame':<34} median {roll / frames:8.1f} ms")
    start = time.perf_counter()
    generate_master.cache_clear()
    hand = Hand.generate(5)
    print(f"{'hand of ten masters':<34} {1e3 * (time.perf_counter() - start):8.1f} ms   (n=1)")
    right = [hand[p] for p in SLAP_FINGERS[Position.PLAIN_RIGHT_FOUR]]
    thumbs = [hand[p] for p in SLAP_FINGERS[Position.PLAIN_THUMBS]]
    timed("four-finger slap 1600x1500", lambda i: slap(right, rng), n)
    timed("two-thumb slap 1600x1500", lambda i: slap(thumbs, rng, thumbs=True), n)

    if args.samples is not None:
        save_samples(args.samples, finger, right, thumbs)


def save_samples(folder: Path, finger, right, thumbs) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    pictures = {
        "flat.png": finger.impression(rng).image,
        "flat_dry.png": finger.impression(rng, quality=0.6, moisture=-0.8).image,
        "flat_wet.png": finger.impression(rng, quality=0.7, moisture=0.8).image,
        "rolled.png": finger.impression(rng, rolled=True).image,
        "roll_frame.png": list(rolled_sequence(finger, rng, 5))[2],
        "slap_right.png": slap(right, rng).image,
        "slap_thumbs.png": slap(thumbs, rng, thumbs=True).image,
    }
    for name, image in pictures.items():
        Image.fromarray(image).save(folder / name)
    print(f"samples written to {folder}")


if __name__ == "__main__":
    main()
