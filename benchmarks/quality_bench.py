"""Benchmark of on-the-spot quality: live checks, NFIQ 2, MINDTCT, segmentation, sequence check.

Prints figures; it is not a test. Run from the repository root::

    .venv/bin/python benchmarks/quality_bench.py            # everything, about 3 minutes
    .venv/bin/python benchmarks/quality_bench.py --persons 2 --frames 200

Sections:

- live: time of one live check on a 400x375 preview (125 ppi of a 1600x1500 platen) and on a
  500 ppi frame of a small sensor;
- nfiq2: extractor start-up, NFIQ 2 per finger and MINDTCT per finger (real FVC2002 DB1 prints
  and synthetic flats);
- segmentation: the annotated real slaps in benchmarks/segmentation_annotations (fingers found,
  order, IoU of the 14.021 box against the annotation) and synthetic slaps (IoU against the
  generator's contact pixels);
- texture: the ridge-texture grid (appliance.imaging.measures.ridge_texture, the NFIQ 2
  pre-check and slap segmentation use it) on a rolled-size 800x750 and a slap-size 1600x1500
  synthetic print, each in a fresh process: time and the growth of peak resident memory, in
  the station's batches of grid rows and with every window at once;
- sequence: bookings from the livescan emulator (slaps 13, 14, 15 and ten rolled prints per
  subject); every pair of rolled prints is swapped in turn, and the check must flag exactly the
  two swapped positions. Detection rate and false alarms are counted per position.

Real data is looked for in $BST_DATA_DIR (default ../shared/data); sections needing it are
skipped with a note when it is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procmem import reset_peak, status_mb  # noqa: E402

from appliance.domain import SLAP_FINGERS, Position  # noqa: E402
from appliance.imaging.live import LiveChecker  # noqa: E402
from appliance.imaging.matching import (  # noqa: E402
    Bozorth3,
    NbisMinutiae,
    SequenceStatus,
    check_sequence,
)
from appliance.imaging.nfiq2 import QualityAssessor, backend_name  # noqa: E402
from appliance.imaging.segmentation import segment_slap  # noqa: E402

ANNOTATIONS = REPO / "benchmarks" / "segmentation_annotations"


def data_dir() -> Path | None:
    path = Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(values: list[float]) -> str:
    v = sorted(values)
    p95 = v[min(len(v) - 1, int(0.95 * len(v)))]
    return f"median {1e3 * statistics.median(v):.2f} ms, p95 {1e3 * p95:.2f} ms (n={len(v)})"


def iou(a, b) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def bench_live(frames: int, synthetic_slap: np.ndarray, flat: np.ndarray) -> None:
    print("\n== live checks (numpy only) ==")
    preview = np.ascontiguousarray(synthetic_slap[::4, ::4])
    checker = LiveChecker(4)
    for _ in range(20):
        checker.check(preview, 125)
    runs = timed(lambda: checker.check(preview, 125), frames)
    print(f"400x375 slap preview at 125 ppi: {ms(runs)}")
    sensor = np.full((flat.shape[0] + 100, flat.shape[1] + 100), 242, np.uint8)
    sensor[50 : 50 + flat.shape[0], 50 : 50 + flat.shape[1]] = flat
    single = LiveChecker(1)
    print(
        f"{sensor.shape[1]}x{sensor.shape[0]} single finger at 500 ppi: "
        f"{ms(timed(lambda: single.check(sensor, 500), frames))}"
    )


def bench_nfiq2(data: Path | None, flats: list[np.ndarray]) -> None:
    print(f"\n== NFIQ 2 and MINDTCT ({backend_name()}) ==")
    start = time.perf_counter()
    assessor = QualityAssessor()
    print(f"NFIQ 2 extractor start-up: {1e3 * (time.perf_counter() - start):.0f} ms")
    start = time.perf_counter()
    mindtct = NbisMinutiae()
    print(f"MINDTCT extractor start-up: {1e3 * (time.perf_counter() - start):.0f} ms")
    sets = {"synthetic flats": flats}
    if data is not None:
        files = sorted((data / "fvc2002/DB1_B").glob("*.tif"))[::4]
        sets["FVC2002 DB1_B (388x374)"] = [gray(f) for f in files]
    for name, images in sets.items():
        nfiq, mind, scores, failed = [], [], [], 0
        for image in images:
            start = time.perf_counter()
            report = assessor.assess(image, 500)
            nfiq.append(time.perf_counter() - start)
            failed += report.failed
            if report.nfiq2 is not None:
                scores.append(report.nfiq2)
            start = time.perf_counter()
            mindtct(image, 500)
            mind.append(time.perf_counter() - start)
        print(f"{name}: NFIQ 2 per finger {ms(nfiq)}; MINDTCT per finger {ms(mind)}")
        print(
            f"  scores median {statistics.median(scores) if scores else '-'}, "
            f"range {min(scores, default='-')}..{max(scores, default='-')}, failed {failed}"
        )


def bench_segmentation(data: Path | None, synthetic_slaps: list[tuple]) -> None:
    print("\n== slap segmentation ==")
    if data is None:
        print("real slaps: skipped (no data folder)")
    else:
        ious, found, expected, ordered, times = [], 0, 0, 0, []
        files = sorted(ANNOTATIONS.glob("*.json"))
        for path in files:
            truth = json.loads(path.read_text())
            image = gray(data / truth["image"])
            start = time.perf_counter()
            seg = segment_slap(image, Position(truth["slap"]), truth["ppi"])
            times.append(time.perf_counter() - start)
            want = [Position(f["position"]) for f in truth["fingers"]]
            got = {f.position: f for f in seg.fingers}
            expected += len(want)
            found += sum(p in got for p in want)
            ordered += [f.position for f in seg.fingers] == want
            per = [iou(got[p].bounds, f["box"]) if p in got else 0.0
                   for p, f in zip(want, truth["fingers"], strict=True)]
            ious += per
            print(f"  {path.stem}: found {sum(p in got for p in want)}/{len(want)}, "
                  f"IoU {' '.join(f'{v:.2f}' for v in per)}")
        print(
            f"real slaps ({len(files)}): fingers found {found}/{expected}, order right "
            f"{ordered}/{len(files)}, IoU mean {statistics.mean(ious):.3f} min {min(ious):.2f}, "
            f"IoU>=0.5 {sum(v >= 0.5 for v in ious)}/{len(ious)}; time {ms(times)}"
        )
    ious, ordered = [], 0
    for slap_position, slap in synthetic_slaps:
        seg = segment_slap(slap.image, slap_position)
        ordered += [f.position for f in seg.fingers] == list(slap.positions)
        for i, finger in enumerate(seg.fingers):
            ys, xs = np.nonzero(slap.labels == i + 1)
            ious.append(iou(finger.bounds, (xs.min(), ys.min(), xs.max(), ys.max())))
    if synthetic_slaps:
        print(
            f"synthetic slaps ({len(synthetic_slaps)}): order right {ordered}/"
            f"{len(synthetic_slaps)}, IoU vs contact pixels mean {statistics.mean(ious):.3f} "
            f"min {min(ious):.2f}"
        )


class CachedMinutiae:
    """MINDTCT remembering each image, so the swapped bookings cost scoring only."""

    def __init__(self) -> None:
        self.extractor = NbisMinutiae()
        self.cache: dict[bytes, list] = {}

    def __call__(self, image: np.ndarray, ppi: float = 500) -> list:
        key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).digest()
        if key not in self.cache:
            self.cache[key] = self.extractor(image, ppi)
        return self.cache[key]


def emulator_booking(subject: int):
    """Slap crops and rolled prints of one emulated subject."""
    from drivers import emulated
    from drivers.base import CaptureMode

    scanner = emulated.EmulatedLivescan(emulated.EmulatedConfig(seed=1000 + subject))
    scanner.open()
    try:
        crops: dict[Position, np.ndarray] = {}
        missing: list[Position] = []
        for slap in SLAP_FINGERS:
            mode = CaptureMode.TWO_THUMBS if slap is Position.PLAIN_THUMBS else (
                CaptureMode.FLAT_FOUR
            )
            scanner.guide(int(slap))
            frame = scanner.capture(mode)
            seg = segment_slap(frame.image, slap, frame.ppi)
            crops.update(seg.crops())
            missing += seg.missing
        rolled = {}
        for position in range(1, 11):
            scanner.guide(position)
            rolled[Position(position)] = scanner.capture(CaptureMode.ROLLED).image
        return crops, rolled, missing
    finally:
        scanner.close()


def bench_sequence(persons: int) -> None:
    print("\n== sequence check on emulator bookings (MINDTCT + BOZORTH3) ==")
    try:
        import drivers.emulated  # noqa: F401
    except ImportError as exc:
        print(f"skipped: the emulator does not import ({exc})")
        return
    extractor, matcher = CachedMinutiae(), Bozorth3()
    clean_flags = clean_positions = 0
    swaps = detected = both_named = false_alarms = other_positions = 0
    genuine, impostor = [], []
    check_times = []
    for subject in range(persons):
        start = time.perf_counter()
        crops, rolled, missing = emulator_booking(subject)
        made = time.perf_counter() - start
        start = time.perf_counter()
        report = check_sequence(rolled, crops, extractor=extractor, matcher=matcher)
        check_times.append(time.perf_counter() - start)
        clean_positions += len(report.results)
        clean_flags += len(report.flagged)
        for (r, s), score in report.scores.items():
            (genuine if r == s else impostor).append(score)
        for a, b in itertools.combinations(sorted(rolled), 2):
            swapped = dict(rolled)
            swapped[a], swapped[b] = rolled[b], rolled[a]
            result = check_sequence(swapped, crops, extractor=extractor, matcher=matcher)
            swaps += 1
            flagged = set(result.flagged)
            detected += {a, b} <= flagged
            both_named += (
                result.results[a].status is SequenceStatus.OUT_OF_SEQUENCE
                and result.results[a].matched_position == b
                and result.results[b].matched_position == a
            )
            false_alarms += len(flagged - {a, b})
            other_positions += len(result.results) - 2
        print(
            f"  subject {subject}: booking made in {made:.1f} s, clean check "
            f"{check_times[-1]:.2f} s (20 extractions), flagged {len(report.flagged)}, "
            f"slap fingers missing {len(missing)}"
        )
    print(
        f"clean bookings: {clean_flags} false alarms in {clean_positions} rolled positions; "
        f"genuine scores median {statistics.median(genuine)} min {min(genuine)}, impostor "
        f"median {statistics.median(impostor)} max {max(impostor)}"
    )
    print(
        f"swapped bookings ({swaps} swaps, every pair of positions): both swapped positions "
        f"flagged {detected}/{swaps} ({100 * detected / swaps:.1f} %), each named as the other's "
        f"finger {both_named}/{swaps}; false alarms on untouched positions "
        f"{false_alarms}/{other_positions}"
    )


def texture_child(batch_px: int, height: int, width: int) -> None:
    """In a fresh process: ridge_texture on one print-sized image; JSON with ms and peak growth."""
    from appliance.imaging import measures
    from drivers import synthetic

    master = synthetic.generate_master(4242)
    image = master.impression(np.random.default_rng(1)).image
    reps = (-(-height // image.shape[0]), -(-width // image.shape[1]))
    image = np.ascontiguousarray(np.tile(image, reps)[:height, :width])
    measures.TEXTURE_BATCH_PX = batch_px
    del master
    reset_peak()
    before = status_mb("VmRSS")
    times = timed(lambda: measures.ridge_texture(image, 500), 3)
    peak = status_mb("VmHWM") - before
    print(json.dumps({"ms": 1000 * statistics.median(times), "added_mb": peak}))


def bench_texture() -> None:
    import subprocess

    from appliance.imaging.measures import TEXTURE_BATCH_PX

    print("\ntexture grid (fresh process each; peak growth over the image already in memory)")
    for height, width in ((750, 800), (1500, 1600)):
        for label, batch in (("station batches", TEXTURE_BATCH_PX), ("all at once", 1 << 40)):
            out = subprocess.run(
                [sys.executable, __file__, "--texture-child", str(batch), str(height), str(width)],
                capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {width}x{height} {label:16}: {r['ms']:6.0f} ms, "
                  f"peak +{r['added_mb']:5.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=500, help="live-check repetitions")
    parser.add_argument("--persons", type=int, default=4, help="emulated subjects")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip")
    parser.add_argument("--texture-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.texture_child:
        texture_child(*args.texture_child)
        return
    data = data_dir()
    print(f"data: {data or 'absent'}; CPU threads: {os.cpu_count()}")

    from drivers import synthetic

    hand = synthetic.generate_hand(4242)
    rng = np.random.default_rng(4242)
    slaps = [
        (Position.PLAIN_RIGHT_FOUR, synthetic.slap(hand[1:5], rng)),
        (Position.PLAIN_LEFT_FOUR, synthetic.slap([hand[9], hand[8], hand[7], hand[6]], rng)),
        (Position.PLAIN_THUMBS, synthetic.slap([hand[5], hand[0]], rng, thumbs=True)),
    ]
    flats = [hand[i].impression(rng).image for i in range(10)]
    if "live" not in args.skip:
        bench_live(args.frames, slaps[0][1].image, flats[2])
    if "nfiq2" not in args.skip:
        bench_nfiq2(data, flats)
    if "segmentation" not in args.skip:
        bench_segmentation(data, slaps)
    if "texture" not in args.skip:
        bench_texture()
    if "sequence" not in args.skip:
        bench_sequence(args.persons)


if __name__ == "__main__":
    main()
