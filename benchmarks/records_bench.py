"""Records layer figures: WSQ speed, ratio and PSNR on NIST's reference set; transaction build
and validation time for a full ten-print booking.

    .venv/bin/python benchmarks/records_bench.py [--data ../shared/data] [--repeat 3]

Needs the shared data set (``BST_DATA_DIR`` or ``--data``) for the WSQ figures and the real-image
booking; without it the booking is built from synthetic ridge patterns and the WSQ part is skipped.
Times are wall-clock medians over ``--repeat`` runs on this machine, with the load average shown,
since other work on the machine slows them down. Prints figures only, never image content.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.domain import (  # noqa: E402
    Booking,
    Impression,
    ImpressionType,
    Position,
    QualityReport,
    Subject,
)
from appliance.records.builder import build_transaction  # noqa: E402
from appliance.records.profile import EBTS_CAR  # noqa: E402
from appliance.records.validate import validate_transaction  # noqa: E402
from appliance.records.wsq import decode_wsq, encode_wsq  # noqa: E402

#: Images up to this many pixels count as single fingers, larger ones as slaps.
FINGER_MAX_PIXELS = 800 * 800
DESCRIPTORS = {20: "NY", 25: "W", 27: "510", 29: "180", 31: "BRO", 32: "BLK", 45: "20240506",
               47: "BURGLARY"}


def gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


def summary(values: list[float], unit: str, scale: float = 1.0, digits: int = 1) -> str:
    v = [x * scale for x in values]
    return (f"median {statistics.median(v):.{digits}f} {unit} (min {min(v):.{digits}f}, "
            f"max {max(v):.{digits}f})")


def wsq_figures(data: Path, repeat: int) -> None:
    folder = data / "nist_wsq_reference"
    rows = {"finger": [], "slap": []}
    for path in sorted((folder / "input").glob("*.webp")):
        original = gray(path)
        encode_s, encoded = timed(lambda original=original: encode_wsq(original), repeat)
        decode_s, decoded = timed(lambda encoded=encoded: decode_wsq(encoded, isolate=False),
                                  repeat)
        isolated_s, _ = timed(lambda encoded=encoded: decode_wsq(encoded), repeat)
        kind = "finger" if original.size <= FINGER_MAX_PIXELS else "slap"
        rows[kind].append(dict(
            name=path.stem, shape=original.shape, encode=encode_s, decode=decode_s,
            isolated=isolated_s, ratio=original.size / len(encoded),
            psnr=psnr(decoded, original)))
    print("WSQ (NBIS via the wsq package, 0.75 bpp), NIST WSQ reference inputs:")
    print(f"  {'image':<10} {'size':>10} {'enc ms':>7} {'dec ms':>7} {'dec* ms':>7} "
          f"{'ratio':>6} {'PSNR dB':>8}")
    for kind in ("finger", "slap"):
        for r in rows[kind]:
            print(f"  {r['name']:<10} {r['shape'][1]:>4}x{r['shape'][0]:<5} "
                  f"{r['encode'] * 1e3:7.1f} {r['decode'] * 1e3:7.1f} {r['isolated'] * 1e3:7.1f} "
                  f"{r['ratio']:6.1f} {r['psnr']:8.1f}")
    print("  (dec* = decode in the isolated decoder process, as decode_wsq does by default)")
    for kind, items in rows.items():
        if not items:
            continue
        print(f"  per {kind} ({len(items)} images): encode "
              f"{summary([r['encode'] for r in items], 'ms', 1e3)}; decode "
              f"{summary([r['decode'] for r in items], 'ms', 1e3)}; isolated decode "
              f"{summary([r['isolated'] for r in items], 'ms', 1e3)}")
        print(f"    ratio {summary([r['ratio'] for r in items], ':1')}; PSNR "
              f"{summary([r['psnr'] for r in items], 'dB')}")
    decode_conformance(folder)


def decode_conformance(folder: Path) -> None:
    print("WSQ decoder against NIST's reference reconstructions:")
    for rate in ("75", "225", "not_7_9"):
        worst, differing, pixels, count = 0, 0, 0, 0
        for path in sorted((folder / "wsq" / rate).glob("*.wsq")):
            decoded = decode_wsq(path.read_bytes(), isolate=False)
            reference = gray(folder / "wsq_decoded" / rate / f"{path.stem}.webp")
            diff = np.abs(decoded.astype(np.int16) - reference.astype(np.int16))
            worst = max(worst, int(diff.max()))
            differing += int(np.count_nonzero(diff))
            pixels += diff.size
            count += 1
        print(f"  {rate:<8} {count} files: largest pixel difference {worst}, "
              f"{differing} of {pixels} pixels differ")


def real_booking(data: Path) -> Booking:
    """Ten single-finger NIST images as rolled prints, two four-finger slaps, a thumb slap."""
    folder = data / "nist_wsq_reference" / "input"
    fingers = [gray(folder / f"cmp{n:05d}.webp") for n in range(1, 11)]
    when = datetime(2024, 5, 6, tzinfo=UTC)
    booking = Booking("BK-BENCH", Subject("Doe", "John", "19800203", "M"), created_at=when)
    for p, image in enumerate(fingers, start=1):
        booking.impressions.append(Impression(Position(p), ImpressionType.ROLLED_LIVE_SCAN,
                                              image, 500, captured_at=when,
                                              quality=QualityReport(nfiq2=60)))
    for position, name in ((Position.PLAIN_RIGHT_FOUR, "a001"), (Position.PLAIN_LEFT_FOUR, "a002"),
                           (Position.PLAIN_THUMBS, "sample_01")):
        booking.impressions.append(Impression(position, ImpressionType.PLAIN_LIVE_SCAN,
                                              gray(folder / f"{name}.webp"), 500,
                                              captured_at=when))
    return booking


def synthetic_booking() -> Booking:
    rng = np.random.default_rng(1)
    when = datetime(2024, 5, 6, tzinfo=UTC)
    booking = Booking("BK-BENCH", Subject("Doe", "John", "19800203", "M"), created_at=when)

    def ridges(h: int, w: int) -> np.ndarray:
        y, x = np.mgrid[0:h, 0:w]
        image = 128 + 90 * np.sin(0.7 * x + 0.0004 * (y - h / 2) ** 2) + rng.normal(0, 8, (h, w))
        return np.clip(image, 0, 255).astype(np.uint8)

    for p in range(1, 11):
        booking.impressions.append(Impression(Position(p), ImpressionType.ROLLED_LIVE_SCAN,
                                              ridges(750, 800), 500, captured_at=when))
    for position in (Position.PLAIN_RIGHT_FOUR, Position.PLAIN_LEFT_FOUR, Position.PLAIN_THUMBS):
        booking.impressions.append(Impression(position, ImpressionType.PLAIN_LIVE_SCAN,
                                              ridges(1000, 1600), 500, captured_at=when))
    return booking


def transaction_figures(booking: Booking, source: str, repeat: int) -> None:
    def build() -> bytes:
        return build_transaction(booking, profile=EBTS_CAR, ori="NY0303000", tcn="BENCH-1",
                                 type2=DESCRIPTORS)

    build_s, data = timed(build, repeat)
    validate_s, issues = timed(lambda: validate_transaction(data, EBTS_CAR), repeat)
    pixels = sum(i.image.size for i in booking.impressions)
    print(f"Ten-print booking ({source}: {len(booking.impressions)} impressions, "
          f"{pixels / 1e6:.1f} Mpixel):")
    print(f"  build_transaction (13 WSQ encodes + records): {build_s * 1e3:.0f} ms, "
          f"{len(data) / 1e3:.0f} kB, {pixels / len(data):.1f}:1 overall")
    print(f"  validate_transaction with ebts-car (13 WSQ decodes): {validate_s * 1e3:.0f} ms, "
          f"{len(issues)} issues")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("BST_DATA_DIR", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"records_bench: {os.cpu_count()} CPUs, load average {load:.1f}, "
          f"median of {args.repeat} runs")
    have_data = (args.data / "nist_wsq_reference" / "input").is_dir()
    if have_data:
        wsq_figures(args.data, args.repeat)
        transaction_figures(real_booking(args.data), "NIST reference images", args.repeat)
    else:
        print(f"shared data not found at {args.data}: WSQ figures skipped")
        transaction_figures(synthetic_booking(), "synthetic ridge images", args.repeat)


if __name__ == "__main__":
    main()
