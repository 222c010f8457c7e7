"""The released model folder: ONNX file name and tensor names, manifest, threshold choice.

Shared by :mod:`models.training.train` (one network) and :mod:`models.training.ensemble`
(several joined into one file); nothing here needs torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from models.training.data import FVC_CACHE, synthetic_labels
from models.training.metrics import Tally

VERSION = "1.1.0"
MODEL_FILE = "minutiae.onnx"
VALIDATION_SEED = 770_000
INPUT_NAME = "image"
OUTPUT_NAMES = ("heat", "offset", "direction", "kind")
#: Output stride of the network (:class:`models.training.model.MinutiaeNet` is built to it).
STRIDE = 8


#: Mirror images the runtime averages over (appliance.minutiae.decode.FLIP_SETS).
FLIPS = 4


def write_manifest(out: Path, threshold: float, extra: dict, flips: int = FLIPS) -> None:
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
    from models.training.verification import eer_of, matcher

    extractor = MinutiaeExtractor(out, threads=2, threshold=0.05)
    bozorth = matcher()
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
    results = {}
    for thr in np.arange(0.04, 0.405, 0.02):
        eers = []
        for found, shapes in per_db.values():
            kept = {k: f[f[:, 4] >= 100 * thr] for k, f in found.items()}
            eers.append(eer_of(kept, shapes, bozorth))
        results[round(float(thr), 2)] = float(np.mean(eers))
        print(f"threshold {thr:.2f}: mean EER {100 * np.mean(eers):.2f}%", file=sys.stderr)
    best = min(results, key=lambda t: (results[t], -t))
    return best, {"mean_eer_training_fingers": round(results[best], 4)}


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
