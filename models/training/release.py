"""The released model folder: ONNX file name and tensor names, manifest, threshold choice.

Shared by :mod:`models.training.train` (one network) and :mod:`models.training.ensemble`
(several joined into one file); nothing here needs torch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.minutiae.decode import FLOOR_THRESHOLD
from models.training.data import FVC_CACHE, synthetic_labels
from models.training.metrics import Tally

VERSION = "1.2.1"
MODEL_FILE = "minutiae.onnx"
VALIDATION_SEED = 770_000
INPUT_NAME = "image"
OUTPUT_NAMES = ("heat", "offset", "direction", "kind")
#: Output stride of the network (:class:`models.training.model.MinutiaeNet` is built to it).
STRIDE = 8


#: Mirror images the runtime averages over (appliance.minutiae.decode.FLIP_SETS).
FLIPS = 4


@dataclass(frozen=True)
class Decoding:
    """How the runtime turns the maps into minutiae besides the threshold, as the manifest
    states it (:mod:`appliance.minutiae.manifest`); the threshold is chosen with it."""

    #: appliance.minutiae.decode.SUPPRESSIONS
    suppression: str = "distance"
    #: two detections closer than this are one minutia
    min_distance_px: float = 6.0
    #: reach of the merge of detections pointing the same way (appliance.minutiae.decode)
    aligned_distance_px: float = 0.0
    #: a print is topped up to this many minutiae from detections at or above the floor
    min_minutiae: int = 0
    floor_threshold: float = FLOOR_THRESHOLD

    @classmethod
    def of(cls, manifest) -> Decoding:
        """The decoding an :class:`appliance.minutiae.manifest.ModelManifest` states."""
        return cls(**{f.name: getattr(manifest, f.name) for f in dataclasses.fields(cls)})


#: The decoding new trainings are released with (model card, "Decoding").
DECODING = Decoding()


def write_manifest(
    out: Path,
    threshold: float,
    extra: dict,
    flips: int = FLIPS,
    decoding: Decoding = DECODING,
) -> None:
    import onnxruntime as ort

    from appliance.minutiae.manifest import MANIFEST_NAME, ORT_DTYPES, file_sha256

    path = out / MODEL_FILE
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def spec(args):
        return [
            {"name": a.name, "shape": list(a.shape), "dtype": ORT_DTYPES.get(a.type, a.type)}
            for a in args
        ]

    manifest = {
        "name": "booking-station minutiae extractor",
        "version": VERSION,
        "file": MODEL_FILE,
        "sha256": file_sha256(path),
        "format": "onnx",
        "opset": 17,
        "inputs": spec(session.get_inputs()),
        "outputs": spec(session.get_outputs()),
        "stride": STRIDE,
        "resolution_ppi": 500,
        "threshold": round(float(threshold), 3),
        "flips": flips,
        **dataclasses.asdict(decoding),
        "normalisation": "(grey - mean(grey)) / max(std(grey), 8); padding to the stride is 0",
        "angle_convention": "ISO/IEC 19794-2: radians counter-clockwise from +x on screen, y down",
        **extra,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def validation_set(count: int = 12):
    """Synthetic validation impressions (fingers never used in training)."""
    from drivers.synthetic import generate_master

    out = []
    for i in range(count):
        master = generate_master(VALIDATION_SEED + i)
        rng = np.random.default_rng([VALIDATION_SEED, i])
        for q in (0.5, 0.9):
            imp = master.impression(rng, quality=q, moisture=float(rng.uniform(-0.5, 0.5)))
            out.append((imp.image, synthetic_labels(imp.minutiae)))
    return out


def choose_threshold(out: Path) -> tuple[float, dict]:
    from appliance.minutiae.extractor import MinutiaeExtractor

    extractor = MinutiaeExtractor(out, threads=2, threshold=0.05)
    runs = []
    for image, truth in validation_set():
        d = extractor.detect(image, 500)
        found = np.stack([d.x, d.y, d.angle, d.probability], axis=1)
        runs.append((found, truth))
    best = (0.0, 0.5, None)
    for thr in np.arange(0.1, 0.91, 0.05):
        tally = Tally()
        for found, truth in runs:
            tally.add(found[found[:, 3] >= thr], truth)
        if tally.f1 > best[0]:
            best = (tally.f1, float(thr), tally)
    f1, thr, tally = best
    stats = {"precision": tally.precision, "recall": tally.recall, "f1": f1}
    print(f"threshold {thr:.2f}: " + json.dumps(stats), file=sys.stderr)
    return thr, {k: round(v, 3) for k, v in stats.items()}


#: The FVC2002 sets whose training fingers choose the threshold (DB4 is synthetic).
CRITERION_SETS = ("DB1_B", "DB2_B", "DB3_B")
#: The threshold grid of that choice.
THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.04, 0.405, 0.02))
#: The detections are taken once at this probability (each threshold keeps a prefix of them;
#: the lowest grid point thus means 0.05, as it did for every release so far).
DETECTION_FLOOR = 0.05


def training_fingers(out: Path) -> tuple[int, ...]:
    """The FVC fingers the model in ``out`` was trained on, as its manifest's training record
    states them (a manifest without them: 101..105, the only ones trained on up to 1.2.0)."""
    from appliance.minutiae.manifest import MANIFEST_NAME
    from models.training.data import TRAIN_FINGERS

    path = out / MANIFEST_NAME
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return tuple(record.get("training", {}).get("fingers", TRAIN_FINGERS))


def left_out_set(out: Path) -> str | None:
    """The FVC2002 set (sensor) the model in ``out`` was trained without, as its manifest's
    training record states it (None: it saw all four)."""
    from appliance.minutiae.manifest import MANIFEST_NAME

    path = out / MANIFEST_NAME
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return record.get("training", {}).get("left_out")


def criterion_sets(left_out: str | None) -> tuple[str, ...]:
    """The sets whose training fingers choose the threshold: never the left-out sensor's."""
    return tuple(db for db in CRITERION_SETS if db != left_out)


def training_finger_detections(
    out: Path, cache: Path, fingers: tuple[int, ...] | None = None, left_out: str | None = None
) -> dict[str, tuple[dict, dict]]:
    """The model in ``out``'s detections on its training fingers (``fingers``, else
    :func:`training_fingers`) of each of :data:`CRITERION_SETS` but ``left_out`` in ``cache``
    (at :data:`DETECTION_FLOOR`, so every threshold's minutiae are a prefix of them):
    set -> ((finger, impression) -> (N, 5) x, y, angle, kind, quality strongest first,
    (finger, impression) -> image shape). Sets without prints are left out."""
    from appliance.minutiae.extractor import MinutiaeExtractor

    fingers = training_fingers(out) if fingers is None else fingers
    extractor = MinutiaeExtractor(out, threads=2, threshold=DETECTION_FLOOR)
    per_db = {}
    for db in criterion_sets(left_out):
        found, shapes = {}, {}
        for path in sorted((cache / FVC_CACHE).glob(f"{db}_*.npz")):
            finger, imp = (int(v) for v in path.stem.split("_")[2:4])
            if finger not in fingers:
                continue
            with np.load(path) as z:
                image = z["image"]
            d = extractor.detect(image, 500)
            found[(finger, imp)] = np.stack(
                [d.x, d.y, d.angle, d.bifurcation.astype(float), 100 * d.probability], axis=1
            )
            shapes[(finger, imp)] = image.shape
        if found:
            per_db[db] = (found, shapes)
    return per_db


def choose_threshold_fvc(
    out: Path, cache: Path, fingers: tuple[int, ...] | None = None, left_out: str | None = None
) -> tuple[float, dict] | None:
    """The threshold with the lowest mean BOZORTH3 EER on the training fingers (those of
    :func:`training_finger_detections`) of
    FVC2002 DB1..DB3 but ``left_out`` (all genuine and impostor pairs), with the manifest's top-up
    (``min_minutiae`` from ``floor_threshold``), or None without those prints."""
    from appliance.minutiae.manifest import load_manifest

    manifest = load_manifest(out)
    top_up = (manifest.min_minutiae, manifest.floor_threshold)
    per_db = training_finger_detections(out, cache, fingers, left_out)
    if not per_db:
        return None
    eers = score_points(per_db, THRESHOLDS, [top_up] * len(THRESHOLDS))
    results = dict(zip(THRESHOLDS, eers, strict=True))
    for thr, per_set in results.items():
        shown = ", ".join(f"{db} {100 * e:.2f}%" for db, e in zip(per_db, per_set, strict=True))
        mean = 100 * np.mean(per_set)
        print(f"threshold {thr:.2f}: mean EER {mean:.2f}% ({shown})", file=sys.stderr)
    means = {thr: float(np.mean(per_set)) for thr, per_set in results.items()}
    best = min(means, key=lambda t: (means[t], -t))
    return best, {"mean_eer_training_fingers": round(means[best], 4)}


def ensure_training_prints(cache: Path, data: Path, fingers: tuple[int, ...]) -> None:
    """Label the training fingers' prints into the trainer's ``cache`` unless they are there."""
    from models.training.data import build_fvc

    if not all(any((cache / FVC_CACHE).glob(f"DB1_B_{f}_*.npz")) for f in fingers):
        build_fvc(cache, data, fingers)


def score_points(
    per_db: dict[str, tuple[dict, dict]],
    thresholds: list[float] | tuple[float, ...],
    top_ups: list[tuple[int, float]],
    caps: list[int] | None = None,
) -> list[list[float]]:
    """:func:`set_eers` of each (threshold, top-up, cap) point, in order (``caps`` default:
    none). BOZORTH3 takes most of the time; the points are scored in two processes."""
    sets = [list(per_db.values())] * len(thresholds)
    caps = caps or [0] * len(thresholds)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(set_eers, thresholds, sets, top_ups, caps))


@functools.cache
def _matcher():
    """This process's BOZORTH3 (loading one takes a third of a second)."""
    from models.training.verification import matcher

    return matcher()


def set_eers(
    thr: float, per_db: list[tuple[dict, dict]], top_up: tuple[int, float], cap: int = 0
) -> list[float]:
    """The EER of each set in ``per_db`` with the minutiae :func:`kept` at ``thr``."""
    from models.training.verification import eer_of

    return [eer_of(kept(found, thr, top_up, cap), shapes, _matcher()) for found, shapes in per_db]


def kept(found: dict, thr: float, top_up: tuple[int, float], cap: int = 0) -> dict:
    """The minutiae the runtime keeps of each print's detections in ``found`` at ``thr``: those
    at or above it, topped up to ``top_up`` = (count, floor) as
    :func:`appliance.minutiae.decode.kept_count` does (the suppression's survivors at or above
    any threshold are the strongest ones, so each threshold's set is a prefix); with ``cap``,
    at most that many, the strongest (a measurement only: no manifest states a cap, see the
    model card's "Measured after 1.2.1")."""
    from appliance.minutiae.decode import kept_count

    least, floor = top_up
    out = {}
    for k, f in found.items():
        f = f[np.argsort(-f[:, 4], kind="stable")]
        n = kept_count(f[:, 4] / 100, thr, least, floor)
        out[k] = f[: min(n, cap) if cap else n]
    return out


def choose_thresholds(
    out: Path,
    cache: Path,
    real: bool = True,
    fingers: tuple[int, ...] | None = None,
    left_out: str | None = None,
) -> tuple[float, dict, dict]:
    """The manifest's threshold for the model in ``out``, its synthetic validation figures and
    how it was chosen: the best synthetic F1's, replaced (``real``) by the training-finger
    BOZORTH3 choice, which then needs the labelled FVC prints in ``cache``."""
    thr, stats = choose_threshold(out)
    chosen: dict = {"synthetic_f1_threshold": round(thr, 2)}
    if real:
        fvc = choose_threshold_fvc(out, cache, fingers, left_out)
        if fvc is None:
            raise SystemExit(
                f"no labelled FVC prints under {cache / FVC_CACHE}: "
                "the threshold cannot be chosen on real prints"
            )
        thr = fvc[0]
        chosen.update({"fvc_threshold": thr, **fvc[1]})
    return thr, stats, chosen


#: Manifest keys :func:`write_manifest` writes itself; the rest are the model's history.
_OWN_KEYS = {
    "name", "version", "file", "sha256", "format", "opset", "inputs", "outputs", "stride",
    "resolution_ppi", "threshold", "flips", "normalisation", "angle_convention",
    *(f.name for f in dataclasses.fields(Decoding)),
}


def redecode(
    folder: Path,
    cache: Path,
    data: Path,
    decoding: Decoding,
    command: str,
    threshold: float | None = None,
) -> dict:
    """Give the trained model in ``folder`` another decoding and a threshold chosen for it.

    The ONNX file is not touched; the manifest gets the new ``decoding``, the threshold that
    :func:`choose_thresholds` picks with it (or ``threshold`` as given, when the grid was
    scored otherwise, e.g. by :mod:`models.training.sweep`), this release's version, and a
    ``decoding`` record of the command and the previous settings. The model's own history
    (``parameters``, ``training``, ``ensemble``) is kept. The training fingers' prints are read
    from the trainer's ``cache`` and labelled there first if missing.
    """
    from appliance.minutiae.manifest import MANIFEST_NAME, load_manifest

    previous = load_manifest(folder)
    old = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    fingers = training_fingers(folder)
    left_out = left_out_set(folder)
    ensure_training_prints(cache, data, fingers)
    flips = previous.flips
    if threshold is None:
        # the grid is scored on a copy: a release stopped half-way leaves the folder as it was
        with tempfile.TemporaryDirectory(prefix="release-") as scratch:
            trial = Path(scratch)
            shutil.copy2(folder / MODEL_FILE, trial / MODEL_FILE)
            write_manifest(trial, 0.5, {}, flips, decoding)
            thr, stats, chosen = choose_thresholds(trial, cache, fingers=fingers, left_out=left_out)
    else:
        thr, stats, chosen = threshold, None, {"given_threshold": threshold}
    history = {k: v for k, v in old.items() if k not in _OWN_KEYS}
    history["decoding"] = {
        "command": command,
        "previous": {
            "version": previous.version,
            "threshold": previous.threshold,
            **dataclasses.asdict(Decoding.of(previous)),
            # how the previous decoding came about, so a chain of releases keeps every step
            **({"decoding": old["decoding"]} if "decoding" in old else {}),
        },
        "synthetic_validation_best_f1": stats,
        "threshold_choice": chosen,
    }
    write_manifest(folder, thr, history, flips, decoding)
    return history["decoding"]


def add_top_up_args(p) -> None:
    """The top-up's options (``--min-minutiae``, ``--floor``), shared with the trainer."""
    p.add_argument(
        "--min-minutiae",
        type=int,
        default=DECODING.min_minutiae,
        help="top a print up to this many minutiae from under the threshold (0: none; "
        "1.2.1 ships 30)",
    )
    p.add_argument(
        "--floor",
        type=float,
        default=DECODING.floor_threshold,
        help="the lowest probability a top-up minutia may have (1.2.1 ships 0.06)",
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from appliance.minutiae.decode import SUPPRESSIONS
    from models.training.data import DEFAULT_CACHE, default_data_dir

    p = argparse.ArgumentParser(
        description="Re-choose a trained model's threshold for another decoding (manifest only)."
    )
    p.add_argument("folder", type=Path, help="model folder (minutiae.onnx and manifest.json)")
    p.add_argument("--suppression", choices=SUPPRESSIONS, default=DECODING.suppression)
    p.add_argument("--min-distance", type=float, default=DECODING.min_distance_px)
    p.add_argument(
        "--aligned-distance",
        type=float,
        default=DECODING.aligned_distance_px,
        help="reach of the merge of detections pointing the same way (0: none)",
    )
    add_top_up_args(p)
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="write this threshold instead of choosing one (the grid scored by "
        "models.training.sweep; choosing here scores it again, 15..35 minutes)",
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--data", type=Path, default=default_data_dir())
    args = p.parse_args(argv)
    command = "python -m models.training.release " + " ".join(argv or sys.argv[1:])
    decoding = Decoding(
        args.suppression, args.min_distance, args.aligned_distance, args.min_minutiae, args.floor
    )
    result = redecode(args.folder, args.cache, args.data, decoding, command, args.threshold)
    print(json.dumps(result["threshold_choice"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
