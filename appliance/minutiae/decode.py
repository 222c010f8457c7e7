"""From the network's output maps to minutiae: threshold, non-maximum suppression, geometry.

Pure numpy, so it is tested without a model. The maps are at the model's stride: each cell
holds the probability that a minutia lies in it, where in the cell (x, y in [0, 1]), the cosine
and sine of its ISO 19794-2 direction and the logit that it is a bifurcation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Two detections closer than this (pixels at 500 ppi) are one minutia: the weaker one goes.
#: The default of manifests that do not state ``min_distance_px`` (model 1.1.0 and earlier).
MIN_DISTANCE_PX = 6.0

#: Two detections whose directions differ by at most this many degrees are one minutia when
#: they lie closer than the manifest's ``aligned_distance_px`` (a second, longer reach than
#: ``min_distance_px``; 0, the default, turns it off). A minutia near a cell's edge can light
#: the neighbouring cell too, which then reports it again a few pixels away with about the same
#: direction; true neighbours that close (the two endings of a short ridge, a bifurcation and
#: an ending beside it) mostly point different ways.
ALIGNED_DEG = 30.0

#: The lowest probability a detection may have when the manifest's ``min_minutiae`` tops a
#: print up (the default of ``floor_threshold``).
FLOOR_THRESHOLD = 0.06

#: How detections are thinned (the manifest's ``suppression``). ``distance``: every cell at or
#: above the threshold is a candidate, and a candidate closer than the minimum distance to a
#: stronger one goes. ``cell-maxima`` (model 1.1.0 and earlier) first keeps only cells not
#: weaker than any of their eight neighbours, which also drops a true minutia whenever a
#: stronger one lies in a neighbouring cell, up to 23 px away (the two endings of a short
#: ridge, a bifurcation beside an ending); the model card measures what that cost.
SUPPRESSIONS = ("distance", "cell-maxima")
#: The suppression of manifests that do not state one.
LEGACY_SUPPRESSION = "cell-maxima"


@dataclass(frozen=True)
class Detections:
    """Minutiae found at the model's resolution, strongest first (parallel arrays)."""

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    bifurcation: np.ndarray
    probability: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: np.ndarray | slice) -> Detections:
        """The detections at ``index`` (an index array, a mask or a slice)."""
        return Detections(
            self.x[index],
            self.y[index],
            self.angle[index],
            self.bifurcation[index],
            self.probability[index],
        )


def kept_count(probability: np.ndarray, threshold: float, min_count: int, floor: float) -> int:
    """How many of the detections (``probability`` strongest first) a print keeps.

    All those at or above ``threshold``; when they are fewer than ``min_count``, the strongest
    of the others too, as long as they reach ``floor``, up to ``min_count``. A fixed threshold
    alone leaves a small or faint print with too few minutiae for a matcher (BOZORTH3's scores
    collapse under about 20); the floor count keeps every print that has the candidates
    matchable, and makes the choice of threshold far less critical (model card, "Decoding").
    """
    above = int(np.count_nonzero(probability >= threshold))
    if above >= min_count:
        return above
    return max(above, min(min_count, int(np.count_nonzero(probability >= floor))))


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, safe for large magnitudes."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def local_maxima(prob: np.ndarray) -> np.ndarray:
    """Boolean map of cells not smaller than any of their eight neighbours."""
    padded = np.pad(prob, 1, mode="constant", constant_values=-1.0)
    h, w = prob.shape
    best = prob.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            np.maximum(best, padded[dy : dy + h, dx : dx + w], out=best)
    return prob >= best


#: Mirror images the model is run on and averaged over, by the manifest's ``flips`` count:
#: (left-right, up-down) pairs.
FLIP_SETS = {
    1: ((False, False),),
    2: ((False, False), (True, False)),
    4: ((False, False), (True, False), (False, True), (True, True)),
}


def mirror(image: np.ndarray, fx: bool, fy: bool) -> np.ndarray:
    """``image`` (..., H, W) mirrored left-right (fx) and/or up-down (fy)."""
    if fx:
        image = image[..., ::-1]
    if fy:
        image = image[..., ::-1, :]
    return np.ascontiguousarray(image)


def unmirror(maps: list[np.ndarray], fx: bool, fy: bool) -> list[np.ndarray]:
    """Output maps of a mirrored input, brought back to the original image's geometry.

    ``maps`` are heat (N, 1, h, w), offset (N, 2, h, w) in [0, 1], direction (N, 2, h, w) as
    cos and sin of the ISO angle, kind (N, 1, h, w). Mirroring left-right turns an angle a into
    pi - a (cos changes sign) and a cell offset o into 1 - o; up-down turns a into -a.
    """
    heat, offset, direction, kind = (mirror(m, fx, fy).copy() for m in maps)
    if fx:
        offset[:, 0] = 1.0 - offset[:, 0]
        direction[:, 0] = -direction[:, 0]
    if fy:
        offset[:, 1] = 1.0 - offset[:, 1]
        direction[:, 1] = -direction[:, 1]
    return [heat, offset, direction, kind]


def average(runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Mean of several runs' maps (directions averaged as vectors, then made unit length)."""
    heat, offset, direction, kind = (sum(r[i] for r in runs) / len(runs) for i in range(4))
    norm = np.sqrt((direction**2).sum(axis=1, keepdims=True)) + 1e-9
    return [heat, offset, direction / norm, kind]


def decode(
    heat: np.ndarray,
    offset: np.ndarray,
    direction: np.ndarray,
    kind: np.ndarray,
    *,
    stride: int,
    threshold: float,
    min_distance: float = MIN_DISTANCE_PX,
    suppression: str = "distance",
    aligned_distance: float = 0.0,
) -> Detections:
    """Detections from one image's output maps.

    ``heat`` and ``kind`` are (h, w) logits, ``offset`` and ``direction`` (2, h, w). Coordinates
    are pixels of the network's input with pixel centres at integers; angles radians in
    [0, 2 pi). ``suppression`` is one of :data:`SUPPRESSIONS`; ``aligned_distance`` is the
    reach of the direction-aware merge (:data:`ALIGNED_DEG`), 0 for none.
    """
    if suppression not in SUPPRESSIONS:
        raise ValueError(f"suppression must be one of {SUPPRESSIONS}, not {suppression!r}")
    prob = sigmoid(heat.astype(np.float64))
    keep = prob >= threshold
    if suppression == "cell-maxima":
        keep &= local_maxima(prob)
    cy, cx = np.nonzero(keep)
    p = prob[cy, cx]
    order = np.argsort(-p, kind="stable")
    cy, cx, p = cy[order], cx[order], p[order]
    x = (cx + offset[0, cy, cx]) * stride - 0.5
    y = (cy + offset[1, cy, cx]) * stride - 0.5
    angle = np.arctan2(direction[1, cy, cx], direction[0, cy, cx]) % (2 * np.pi)
    bif = kind[cy, cx] > 0.0
    chosen = _suppress(x, y, angle, min_distance, aligned_distance)
    return Detections(
        x=x[chosen],
        y=y[chosen],
        angle=angle[chosen],
        bifurcation=bif[chosen],
        probability=p[chosen],
    )


def _suppress(
    x: np.ndarray, y: np.ndarray, angle: np.ndarray, distance: float, aligned_distance: float
) -> np.ndarray:
    """Indices kept by greedy suppression of points (already strongest first).

    A point goes when a kept one lies within ``distance``, or within ``aligned_distance`` and
    points the same way (:data:`ALIGNED_DEG`).
    """
    limit = np.radians(ALIGNED_DEG)
    kept: list[int] = []
    for i in range(len(x)):
        if kept:
            k = np.asarray(kept)
            d = np.hypot(x[k] - x[i], y[k] - y[i])
            if np.min(d) < distance:
                continue
            near = d < aligned_distance
            if near.any():
                turn = np.abs((angle[k[near]] - angle[i] + np.pi) % (2 * np.pi) - np.pi)
                if np.min(turn) <= limit:
                    continue
        kept.append(i)
    return np.asarray(kept, dtype=np.int64)
