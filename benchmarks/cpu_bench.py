"""CPU of the station's print work, before and after a change, with NIST's own call as anchor.

Prints figures; it is not a test. Run from the repository root, with a checkout of the
reference commit beside it (``git worktree add /tmp/before main``, or
``git archive main | tar -x -C /tmp/before``)::

    .venv/bin/python benchmarks/cpu_bench.py --before /tmp/before [--rounds 3] [--prints 40]

Each round runs one child process per tree (this checkout is ``after``), alternating, each with
this venv's packages and its own tree's code first on the path. Every child measures, as CPU
time of the whole process (all threads, ``time.process_time``):

- warm-up: building and warming the station's print checks and minutiae model
  (``BookingProcessor.warm_up``: NBIS extractors, NFIQ 2's model, the ONNX model), the part of
  start-to-READY these changes touch;
- per finger: the station's whole work on one accepted single-finger print (the check the
  officer waits for, ``inspect``, plus what runs while the next print is taken, ``prepare``:
  minutiae for the sequence check and the transaction, WSQ where the tree does it then), on
  real 500 ppi FVC2002 DB1 prints;
- the anchor, in the same process on the same prints: one call of the NBIS binding's own
  ``extract_minutiae`` on the PNG bytes with NFIQ 2 on (NIST's MINDTCT and NFIQ 2 in one call,
  as a station without any of its own work would spend);
- submit: the CPU of submitting one emulated ten-print booking (sequence and duplicate checks,
  the transaction built and validated; the store's commit is not included), after every print
  was inspected and prepared as at acceptance.

The load average is printed before and after; absolute times on a loaded machine are inflated,
the ratios from one run are the figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def data_dir() -> Path:
    return Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))


def make_booking(path: Path, seed: int) -> None:
    """Slap frames and rolled frames of one emulated subject, saved for every child."""
    sys.path.insert(0, str(REPO))
    from drivers.base import CaptureMode
    from drivers.emulated import EmulatedConfig, EmulatedLivescan

    scanner = EmulatedLivescan(EmulatedConfig(seed=seed))
    scanner.open()
    frames: dict[str, np.ndarray] = {}
    try:
        for slap, mode in ((13, CaptureMode.FLAT_FOUR), (14, CaptureMode.FLAT_FOUR),
                           (15, CaptureMode.TWO_THUMBS)):
            scanner.guide(slap)
            frames[str(slap)] = scanner.capture(mode).image
        for position in range(1, 11):
            scanner.guide(position)
            frames[str(position)] = scanner.capture(CaptureMode.ROLLED).image
    finally:
        scanner.close()
    np.savez(path, **frames)


def child(booking_path: Path, prints: int) -> dict[str, float]:
    """One tree's measurements (runs with that tree first on sys.path)."""
    from PIL import Image

    from appliance.app import build_processor
    from appliance.config import StationConfig
    from appliance.domain import Booking, Impression, ImpressionType, Position, Subject

    config = StationConfig.model_validate({"records": {"profile": "local-tenprint"},
                                           "quality": {"min_nfiq2_plain": 0,
                                                       "min_nfiq2_rolled": 0}})
    start = time.process_time()
    processor = build_processor(config)
    processor.warm_up()
    warm_up = time.process_time() - start

    files = sorted((data_dir() / "fvc2002/DB1_B").glob("*.tif"))[::2][:prints]
    images = [np.asarray(Image.open(f).convert("L")) for f in files]
    import io

    import nbis

    settings = nbis.NbisExtractorSettings(min_quality=0.0, get_center=False,
                                          check_fingerprint=False, compute_nfiq2=True, ppi=500.0)
    anchor_extractor = nbis.new_nbis_extractor(settings)
    per_finger, anchor = [], []
    for image in images:
        imp = Impression(position=Position.RIGHT_INDEX, image=image, ppi=500,
                         impression_type=ImpressionType.ROLLED_LIVE_SCAN)
        start = time.process_time()
        processor.inspect(imp, {}, 0)
        processor.prepare(imp, {})
        per_finger.append(time.process_time() - start)
        start = time.process_time()
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG", compress_level=1)
        try:
            anchor_extractor.extract_minutiae(out.getvalue()).quality()
        except Exception:  # noqa: BLE001 - NFIQ 2 gives up on some prints; the time counts
            pass
        anchor.append(time.process_time() - start)
        processor.discard([imp])

    with np.load(booking_path) as frames:
        impressions = [
            Impression(position=Position(int(k)), image=frames[k], ppi=500,
                       impression_type=ImpressionType.PLAIN_LIVE_SCAN if int(k) > 10
                       else ImpressionType.ROLLED_LIVE_SCAN)
            for k in sorted(frames.files, key=lambda k: (int(k) <= 10, int(k)))
        ]
    booking = Booking(booking_number="BENCH-1", subject=Subject(), impressions=impressions)
    for imp in impressions:
        processor.inspect(imp, {}, 0)
        processor.prepare(imp, {})
    start = time.process_time()
    sequence, duplicates = processor.sequence(booking)
    processor.build(booking)
    submit = time.process_time() - start
    flagged = len(sequence.flagged) if sequence else -1
    return {"warm_up_s": warm_up, "per_finger_ms": 1e3 * statistics.median(per_finger),
            "anchor_ms": 1e3 * statistics.median(anchor), "submit_s": submit,
            "flagged": flagged, "duplicates": len(duplicates)}


def run_child(tree: Path, booking: Path, prints: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), BST_DATA_DIR=str(data_dir()))
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "cpu_bench.py"), "--child", str(booking),
         "--prints", str(prints)],
        cwd=tree, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout of the reference commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prints", type=int, default=40)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(child(args.child, args.prints)))
        return
    trees = {"after": REPO}
    if args.before:
        trees = {"before": args.before.resolve(), "after": REPO}
    print(f"load average {load_average()}; CPU threads {os.cpu_count()}; trees "
          + ", ".join(f"{k}={v}" for k, v in trees.items()))
    with tempfile.TemporaryDirectory() as tmp:
        booking = Path(tmp) / "booking.npz"
        make_booking(booking, seed=4711)
        results: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
        for round_ in range(args.rounds):
            for name, tree in trees.items():
                found = run_child(tree, booking, args.prints)
                results[name].append(found)
                print(f"round {round_ + 1} {name}: " + json.dumps(
                    {k: round(v, 3) for k, v in found.items()}), flush=True)
    print()
    median = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
              for name, rows in results.items()}
    for name, m in median.items():
        print(f"{name:6}: warm-up {m['warm_up_s']:.2f} s CPU; per finger {m['per_finger_ms']:.0f} "
              f"ms CPU = {m['per_finger_ms'] / m['anchor_ms']:.2f}x the anchor "
              f"({m['anchor_ms']:.0f} ms: the binding's own MINDTCT + NFIQ 2 call); submit "
              f"{m['submit_s']:.2f} s CPU (flagged {m['flagged']:.0f})")
    if "before" in median:
        b, a = median["before"], median["after"]
        print(f"after/before: warm-up {a['warm_up_s'] / b['warm_up_s']:.2f}, per finger "
              f"{a['per_finger_ms'] / b['per_finger_ms']:.2f}, submit "
              f"{a['submit_s'] / b['submit_s']:.2f}")
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
