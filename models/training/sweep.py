"""The training-finger criterion of a model at chosen (threshold, top-up) points, per set.

The release rule (:func:`models.training.release.choose_threshold_fvc`) scores one decoding
over the whole threshold grid; this scores any points, the manifest's top-up count included,
and shows each set's EER beside the mean, which the rule hides (on DB2 the training fingers
are separated perfectly at most thresholds, so the mean is DB1's and DB3's)::

    python -m models.training.sweep models/minutiae 0.16:0 0.20:0 0.20:30 --floor 0.06

Each point is ``THRESHOLD:MIN_MINUTIAE[:MAX_MINUTIAE]``; the model's other decoding settings are
its manifest's. ``MAX_MINUTIAE`` keeps at most that many minutiae per print, the strongest: a
measurement only, no manifest states one (model card, "Measured after 1.2.1"). ``--fingers``
scores other fingers than the model's training fingers, e.g. the held-out ones (then the
figures are no longer a choice made without them). It reads the prints from the trainer's
cache (labelling them there first if missing, as ``models.training.release`` does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.training.data import DEFAULT_CACHE, FVC_CACHE, default_data_dir, parse_fingers
from models.training.release import (
    DECODING,
    ensure_training_prints,
    score_points,
    training_finger_detections,
    training_fingers,
)


def point(text: str) -> tuple[float, int, int]:
    """``"0.20:30"`` -> (0.20, 30, 0); ``"0.16:30:60"`` -> (0.16, 30, 60) (0: no cap)."""
    thr, _, counts = text.partition(":")
    least, _, most = counts.partition(":")
    return float(thr), int(least or 0), int(most or 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="model folder (minutiae.onnx and manifest.json)")
    p.add_argument("points", nargs="+", type=point, help="THRESHOLD:MIN_MINUTIAE[:MAX_MINUTIAE]")
    p.add_argument("--fingers", type=parse_fingers,
                   help="FVC fingers to score, e.g. 106-110 (default: the model's training ones)")
    p.add_argument("--floor", type=float, default=DECODING.floor_threshold)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--data", type=Path, default=default_data_dir())
    args = p.parse_args(argv)
    fingers = args.fingers or training_fingers(args.folder)
    ensure_training_prints(args.cache, args.data, fingers)
    per_db = training_finger_detections(args.folder, args.cache, fingers)
    if not per_db:
        raise SystemExit(f"no labelled FVC prints under {args.cache / FVC_CACHE}")
    eers = score_points(
        per_db,
        [thr for thr, _, _ in args.points],
        [(least, args.floor) for _, least, _ in args.points],
        [most for _, _, most in args.points],
    )
    print(f"fingers {','.join(map(str, fingers))}")
    for (thr, least, most), per_set in zip(args.points, eers, strict=True):
        shown = "  ".join(f"{db} {100 * e:.2f}%" for db, e in zip(per_db, per_set, strict=True))
        mean = 100 * np.mean(per_set)
        cap = f" max_minutiae {most:3d}" if most else ""
        print(f"threshold {thr:.2f} min_minutiae {least:3d}{cap}: mean {mean:.2f}%  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
