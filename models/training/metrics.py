"""Detection metrics against ground truth: one-to-one matching within a distance and an angle.

Numpy only, shared by training (threshold choice) and ``benchmarks/minutiae_eval.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MATCH_PX = 12.0
MATCH_DEG = 30.0


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in radians, in [0, pi]."""
    return np.abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def match(
    found: np.ndarray, truth: np.ndarray, px: float = MATCH_PX, deg: float = MATCH_DEG
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (found index, truth index), closest first.

    ``found`` and ``truth`` are (N, >=3) arrays of x, y, angle (radians).
    """
    if not len(found) or not len(truth):
        return []
    d = np.hypot(found[:, None, 0] - truth[None, :, 0], found[:, None, 1] - truth[None, :, 1])
    ok = (d <= px) & (angle_diff(found[:, None, 2], truth[None, :, 2]) <= math.radians(deg))
    fi, ti = np.nonzero(ok)
    order = np.argsort(d[fi, ti], kind="stable")
    used_f, used_t, pairs = set(), set(), []
    for k in order:
        f, t = int(fi[k]), int(ti[k])
        if f in used_f or t in used_t:
            continue
        used_f.add(f)
        used_t.add(t)
        pairs.append((f, t))
    return pairs


@dataclass
class Tally:
    """Running counts over many impressions."""

    found: int = 0
    truth: int = 0
    matched: int = 0
    loc_err: list[float] = field(default_factory=list)
    ang_err: list[float] = field(default_factory=list)

    def add(self, found: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
        """Count one impression; returns its matched (found, truth) index pairs."""
        pairs = match(found, truth)
        self.found += len(found)
        self.truth += len(truth)
        self.matched += len(pairs)
        for f, t in pairs:
            self.loc_err.append(float(np.hypot(*(found[f, :2] - truth[t, :2]))))
            self.ang_err.append(math.degrees(float(angle_diff(found[f, 2], truth[t, 2]))))
        return pairs

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0
