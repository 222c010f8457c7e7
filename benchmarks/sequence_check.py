"""Benchmark of the sequence check: false alarms on genuine bookings, and every swap caught.

Prints figures; it is not a test. Run from the repository root::

    .venv/bin/python benchmarks/sequence_check.py                  # 200 subjects, all of FVC
    .venv/bin/python benchmarks/sequence_check.py --subjects 20 --jobs 2

Bookings:

- emulated: ten-print bookings of distinct subjects from the livescan emulator (slaps 13, 14,
  15 segmented by the station, ten rolled prints), as in ``quality_bench.py``;
- real: FVC2002 set B (DB1..DB3 real sensors, DB4 synthetic), fingers 101..110 standing for
  positions 1..10, one impression as the slap finger and another as the rolled print, for every
  ordered pair of impressions (56 bookings a database).

For every booking the check runs on the genuine booking (a flagged position is a false alarm)
and on the booking with every pair of rolled prints swapped in turn (both swapped positions
must be flagged). Each runs under three strategies side by side: ``station`` (a rolled print
is compared with its own slap finger and crossed with the others only when that fails; only a
better match with another finger is flagged, a print matching nothing is left unconfirmed),
``own-first strict`` (the same order, unconfirmed prints flagged too) and ``before`` (every
rolled print against every slap finger, unconfirmed prints flagged: the check before #26).

Minutiae come from the station's MINDTCT (through the shared NBIS engine), extracted once per
print and kept in a cache folder (``--cache``), since the emulator takes seconds per booking.
BOZORTH3 scores are kept per pair within a run, so the swapped bookings cost judging only; the
comparisons each strategy asks for are counted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.domain import Minutia, MinutiaType, Position  # noqa: E402
from appliance.imaging.matching import (  # noqa: E402
    Bozorth3,
    Fingerprint,
    NbisMinutiae,
    SequenceReport,
    fingerprint_of,
    judge_sequence,
)
from appliance.imaging.nfiq2 import backend_name  # noqa: E402

ROLLED = [Position(p) for p in range(1, 11)]
FVC_PPI = {"DB1_B": 500, "DB2_B": 569, "DB3_B": 500, "DB4_B": 500}
#: name: (own_first, strict). The first is the station's; the last is the check before #26.
STRATEGIES = {"station": (True, False), "own-first strict": (True, True),
              "before": (False, True)}


def data_dir() -> Path | None:
    path = Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "booking-station" / "sequence-check"


# ---- minutiae, extracted once ----------------------------------------------------------------

Extracted = tuple[np.ndarray, tuple[int, int]]  # (n, 5) x y angle kind quality, (width, height)


def as_rows(found: list[Minutia]) -> np.ndarray:
    return np.array([(m.x, m.y, m.angle, m.kind is MinutiaType.BIFURCATION, m.quality)
                     for m in found], dtype=np.float64).reshape(-1, 5)


def as_minutiae(rows: np.ndarray) -> list[Minutia]:
    return [Minutia(float(x), float(y), float(a),
                    MinutiaType.BIFURCATION if k else MinutiaType.ENDING, int(q))
            for x, y, a, k, q in rows]


def extract(mindtct: NbisMinutiae, image: np.ndarray, ppi: float) -> Extracted:
    """Minutiae at 500 ppi and the image's size at 500 ppi."""
    scale = 500.0 / ppi
    rows = as_rows(mindtct(image, ppi))
    rows[:, :2] *= scale
    h, w = image.shape
    return rows, (round(w * scale), round(h * scale))


def emulated_subject(subject: int, cache: Path) -> Path:
    """Extract (or find in the cache) the 20 prints of one emulated subject."""
    path = cache / f"emulated-{subject:04d}.npz"
    if path.exists():
        return path
    from quality_bench import emulator_booking

    crops, rolled, _ = emulator_booking(subject)
    mindtct = NbisMinutiae()
    arrays: dict[str, Any] = {}
    for kind, images in (("slap", crops), ("rolled", rolled)):
        for position, image in images.items():
            rows, size = extract(mindtct, image, 500)
            arrays[f"{kind}{int(position)}"] = rows
            arrays[f"{kind}{int(position)}_size"] = np.array(size)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.rename(path)
    return path


def fvc_database(folder: Path, ppi: float, cache: Path) -> Path:
    """Extract (or find in the cache) the 80 prints of one FVC2002 database."""
    path = cache / f"fvc-{folder.name}.npz"
    if path.exists():
        return path
    mindtct = NbisMinutiae()
    arrays: dict[str, Any] = {}
    for file in sorted(folder.glob("*.tif")):
        image = np.asarray(Image.open(file).convert("L"))
        rows, size = extract(mindtct, image, ppi)
        arrays[file.stem] = rows
        arrays[f"{file.stem}_size"] = np.array(size)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.rename(path)
    return path


# ---- judging ---------------------------------------------------------------------------------


class CountingMatcher:
    """BOZORTH3 scores kept per pair of loaded prints; counts what each strategy asks for."""

    def __init__(self, matcher: Bozorth3) -> None:
        self.matcher = matcher
        self.known: dict[tuple[int, int], int] = {}
        self.asked = 0

    def score(self, a: Any, b: Any) -> int:
        self.asked += 1
        key = (id(a), id(b))
        if key not in self.known:
            self.known[key] = self.matcher.score(a, b)
        return self.known[key]


@dataclass
class Tally:
    bookings: int = 0
    positions: int = 0
    false_alarms: int = 0
    unconfirmed: int = 0
    bookings_flagged: int = 0
    swaps: int = 0
    swaps_caught: int = 0
    swaps_named: int = 0
    swap_other_flags: int = 0
    swap_other_positions: int = 0
    comparisons_genuine: int = 0
    missed: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


def judge_booking(label: str, slaps: Mapping[Position, Fingerprint],
                  rolled: Mapping[Position, Fingerprint], matcher: CountingMatcher,
                  own_first: bool, strict: bool) -> Tally:
    """The genuine booking and every swap of two rolled prints, under one strategy."""
    tally = Tally(bookings=1)

    def run(probes: Mapping[Position, Fingerprint]) -> SequenceReport:
        return judge_sequence(probes, slaps, matcher, own_first=own_first, strict=strict)

    before = matcher.asked
    report = run(rolled)
    tally.comparisons_genuine = matcher.asked - before
    tally.positions = len(report.results)
    tally.false_alarms = len(report.flagged)
    tally.unconfirmed = len(report.unconfirmed)
    tally.bookings_flagged = int(bool(report.flagged))
    for a, b in itertools.combinations(sorted(rolled), 2):
        swapped = dict(rolled)
        swapped[a] = Fingerprint(a, rolled[b].template, rolled[b].minutiae, rolled[b].handle)
        swapped[b] = Fingerprint(b, rolled[a].template, rolled[a].minutiae, rolled[a].handle)
        result = run(swapped)
        flagged = set(result.flagged)
        tally.swaps += 1
        caught = {a, b} <= flagged
        tally.swaps_caught += caught
        if not caught:
            tally.missed.append(f"{label} {int(a)}<->{int(b)}")
        tally.swaps_named += (result.results[a].matched_position == b
                              and result.results[b].matched_position == a)
        tally.swap_other_flags += len(flagged - {a, b})
        tally.swap_other_positions += len(result.results) - 2
    return tally


def load_prints(arrays: Mapping[str, np.ndarray], names: Mapping[Position, str],
                matcher: Bozorth3, handles: dict[str, Fingerprint]) -> dict[Position, Fingerprint]:
    out = {}
    for position, name in names.items():
        if name not in handles:
            w, h = (int(v) for v in arrays[f"{name}_size"])
            handles[name] = fingerprint_of(position, as_minutiae(arrays[name]), w, h, matcher)
        found = handles[name]
        out[position] = Fingerprint(position, found.template, found.minutiae, found.handle)
    return out


def emulated_bookings(paths: list[Path], matcher: Bozorth3) -> Iterator[tuple[str, dict, dict]]:
    for path in paths:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        handles: dict[str, Fingerprint] = {}
        slap_names = {p: f"slap{int(p)}" for p in ROLLED if f"slap{int(p)}" in arrays}
        rolled_names = {p: f"rolled{int(p)}" for p in ROLLED}
        yield (path.stem, load_prints(arrays, slap_names, matcher, handles),
               load_prints(arrays, rolled_names, matcher, handles))


def fvc_bookings(path: Path, matcher: Bozorth3) -> Iterator[tuple[str, dict, dict]]:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    handles: dict[str, Fingerprint] = {}
    for flat, roll in itertools.permutations(range(1, 9), 2):
        slaps = {p: f"{100 + int(p)}_{flat}" for p in ROLLED}
        rolled = {p: f"{100 + int(p)}_{roll}" for p in ROLLED}
        yield (f"{path.stem} flat {flat} rolled {roll}",
               load_prints(arrays, slaps, matcher, handles),
               load_prints(arrays, rolled, matcher, handles))


def report(name: str, tallies: dict[str, Tally]) -> None:
    print(f"\n{name}")
    for strategy, t in tallies.items():
        fa = 100 * t.false_alarms / max(1, t.positions)
        caught = 100 * t.swaps_caught / max(1, t.swaps)
        print(
            f"  {strategy:16}: genuine bookings {t.bookings}, false alarms {t.false_alarms}/"
            f"{t.positions} rolled positions ({fa:.2f} %), bookings with any alarm "
            f"{t.bookings_flagged}/{t.bookings}, left unconfirmed {t.unconfirmed}; "
            f"swaps caught {t.swaps_caught}/{t.swaps} "
            f"({caught:.2f} %), named as each other {t.swaps_named}/{t.swaps}, other positions "
            f"flagged in swapped bookings {t.swap_other_flags}/{t.swap_other_positions}; "
            "BOZORTH3 comparisons per genuine booking "
            f"{t.comparisons_genuine / max(1, t.bookings):.1f}"
        )
        if t.missed:
            print(f"    missed swaps: {', '.join(t.missed[:12])}"
                  + (f" (+{len(t.missed) - 12})" if len(t.missed) > 12 else ""))


def judge_all(bookings: Iterator[tuple[str, dict, dict]], matcher: Bozorth3) -> dict[str, Tally]:
    tallies = {s: Tally(bookings=0) for s in STRATEGIES}
    counting = CountingMatcher(matcher)
    for label, slaps, rolled in bookings:
        for strategy, (own_first, strict) in STRATEGIES.items():
            tallies[strategy].add(judge_booking(label, slaps, rolled, counting, own_first,
                                                strict))
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=200, help="emulated subjects")
    parser.add_argument("--jobs", type=int, default=1, help="processes extracting minutiae")
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--extract-only", action="store_true")
    args = parser.parse_args()
    cache = args.cache / backend_name().replace(" ", "-")
    cache.mkdir(parents=True, exist_ok=True)
    data = data_dir()
    print(f"NBIS {backend_name()}; data {data or 'absent'}; cache {cache}; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        subjects = list(pool.map(emulated_subject, range(args.subjects),
                                 itertools.repeat(cache)))
        fvc = list(pool.map(fvc_database, [data / "fvc2002" / db for db in FVC_PPI],
                            FVC_PPI.values(), itertools.repeat(cache))) if data else []
    print(f"minutiae ready in {time.perf_counter() - start:.0f} s")
    if args.extract_only:
        return
    matcher = Bozorth3()
    report(f"emulated ten-print bookings of {len(subjects)} distinct subjects",
           judge_all(emulated_bookings(subjects, matcher), matcher))
    total = {s: Tally(bookings=0) for s in STRATEGIES}
    for path in fvc:
        tallies = judge_all(fvc_bookings(path, matcher), matcher)
        report(f"FVC2002 {path.stem.removeprefix('fvc-')} (56 bookings: every ordered pair "
               "of impressions as flat and rolled)", tallies)
        if "DB4" not in path.stem:
            for s, t in tallies.items():
                total[s].add(t)
    if fvc:
        report("FVC2002 real sensors together (DB1..DB3)", total)
    print(f"\nload average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
