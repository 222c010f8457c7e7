"""The released model folder: ONNX file name and tensor names, manifest, threshold choice.

Shared by :mod:`models.training.train` (one network) and :mod:`models.training.ensemble`
(several joined into one file); nothing here needs torch.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from models.training.data import FVC_CACHE, synthetic_labels
from models.training.metrics import Tally

VERSION = "1.2.0"
MODEL_FILE = "minutiae.onnx"
VALIDATION_SEED = 770_000
INPUT_NAME = "image"
OUTPUT_NAMES = ("heat", "offset", "direction", "kind")
#: Output stride of the network (:class:`models.training.model.MinutiaeNet` is built to it).
STRIDE = 8


#: Mirror images the runtime averages over (appliance.minutiae.decode.FLIP_SETS).
FLIPS = 4
#: How the runtime thins detections (appliance.minutiae.decode.SUPPRESSIONS) and how close two
#: minutiae may be; written to the manifest, and the threshold is chosen with them.
SUPPRESSION = "distance"
MIN_DISTANCE_PX = 6.0


def write_manifest(
    out: Path,
    threshold: float,
    extra: dict,
    flips: int = FLIPS,
    suppression: str = SUPPRESSION,
    min_distance_px: float = MIN_DISTANCE_PX,
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
        "suppression": suppression,
        "min_distance_px": min_distance_px,
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


def choose_threshold_fvc(out: Path, cache: Path) -> tuple[float, dict] | None:
    """The threshold with the lowest mean BOZORTH3 EER on the training fingers 101..105 of
    FVC2002 DB1..DB3 (all genuine and impostor pairs), or None without those prints."""
    from appliance.minutiae.extractor import MinutiaeExtractor

    extractor = MinutiaeExtractor(out, threads=2, threshold=0.05)
    per_db = {}
    for db in ("DB1_B", "DB2_B", "DB3_B"):
        found, shapes = {}, {}
        for path in sorted((cache / FVC_CACHE).glob(f"{db}_*.npz")):
            finger, imp = (int(v) for v in path.stem.split("_")[2:4])
            with np.load(path) as z:
                image = z["image"]
            d = extractor.detect(image, 500)
            found[(finger, imp)] = np.stack(
                [d.x, d.y, d.angle, d.bifurcation.astype(float), 100 * d.probability], axis=1
            )
            shapes[(finger, imp)] = image.shape
        if found:
            per_db[db] = (found, shapes)
    if not per_db:
        return None
    thresholds = [round(float(t), 2) for t in np.arange(0.04, 0.405, 0.02)]
    # BOZORTH3 takes most of the time; the thresholds are scored in two processes.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        means = pool.map(_mean_eer, thresholds, [list(per_db.values())] * len(thresholds))
        results = dict(zip(thresholds, means, strict=True))
    for thr, mean in results.items():
        print(f"threshold {thr:.2f}: mean EER {100 * mean:.2f}%", file=sys.stderr)
    best = min(results, key=lambda t: (results[t], -t))
    return best, {"mean_eer_training_fingers": round(results[best], 4)}


@functools.cache
def _matcher():
    """This process's BOZORTH3 (loading one takes a third of a second)."""
    from models.training.verification import matcher

    return matcher()


def _mean_eer(thr: float, per_db: list[tuple[dict, dict]]) -> float:
    """Mean EER over the sets in ``per_db`` of the minutiae at or above ``thr``."""
    from models.training.verification import eer_of

    eers = []
    for found, shapes in per_db:
        kept = {k: f[f[:, 4] >= 100 * thr] for k, f in found.items()}
        eers.append(eer_of(kept, shapes, _matcher()))
    return float(np.mean(eers))


def choose_thresholds(out: Path, cache: Path, real: bool = True) -> tuple[float, dict, dict]:
    """The manifest's threshold for the model in ``out``, its synthetic validation figures and
    how it was chosen: the best synthetic F1's, replaced (``real``) by the training-finger
    BOZORTH3 choice, which then needs the labelled FVC prints in ``cache``."""
    thr, stats = choose_threshold(out)
    chosen: dict = {"synthetic_f1_threshold": round(thr, 2)}
    if real:
        fvc = choose_threshold_fvc(out, cache)
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
    "resolution_ppi", "threshold", "flips", "suppression", "min_distance_px", "normalisation",
    "angle_convention",
}


def redecode(
    folder: Path, cache: Path, data: Path, suppression: str, min_distance_px: float, command: str
) -> dict:
    """Give the trained model in ``folder`` another decoding and a threshold chosen for it.

    The ONNX file is not touched; the manifest gets the new ``suppression`` and
    ``min_distance_px``, the threshold that :func:`choose_thresholds` picks with them, this
    release's version, and a ``decoding`` record of the command and the previous settings. The
    model's own history (``parameters``, ``training``, ``ensemble``) is kept. The training
    fingers' prints are read from the trainer's ``cache`` and labelled there first if missing.
    """
    from appliance.minutiae.manifest import MANIFEST_NAME, load_manifest
    from models.training.data import TRAIN_FINGERS, build_fvc

    previous = load_manifest(folder)
    old = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    if not any((cache / FVC_CACHE).glob("DB1_B_*.npz")):
        build_fvc(cache, data, TRAIN_FINGERS)
    flips = previous.flips
    write_manifest(folder, 0.5, {}, flips, suppression, min_distance_px)
    thr, stats, chosen = choose_thresholds(folder, cache)
    history = {k: v for k, v in old.items() if k not in _OWN_KEYS}
    history["decoding"] = {
        "command": command,
        "previous": {
            "version": previous.version,
            "threshold": previous.threshold,
            "suppression": previous.suppression,
            "min_distance_px": previous.min_distance_px,
        },
        "synthetic_validation_best_f1": stats,
        "threshold_choice": chosen,
    }
    write_manifest(folder, thr, history, flips, suppression, min_distance_px)
    return history["decoding"]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from appliance.minutiae.decode import SUPPRESSIONS
    from models.training.data import DEFAULT_CACHE, default_data_dir

    p = argparse.ArgumentParser(
        description="Re-choose a trained model's threshold for another decoding (manifest only)."
    )
    p.add_argument("folder", type=Path, help="model folder (minutiae.onnx and manifest.json)")
    p.add_argument("--suppression", choices=SUPPRESSIONS, default=SUPPRESSION)
    p.add_argument("--min-distance", type=float, default=MIN_DISTANCE_PX)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--data", type=Path, default=default_data_dir())
    args = p.parse_args(argv)
    command = "python -m models.training.release " + " ".join(argv or sys.argv[1:])
    result = redecode(
        args.folder, args.cache, args.data, args.suppression, args.min_distance, command
    )
    print(json.dumps(result["threshold_choice"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
