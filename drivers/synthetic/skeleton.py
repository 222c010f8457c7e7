"""Thinning and crossing-number minutiae: the ground truth read off a binary ridge map.

The synthetic generator knows its ridge pattern exactly, so its true minutiae are the endings and
forks of the pattern's skeleton. The skeleton comes from Zhang-Suen thinning (vectorised), the
candidates from the crossing number, and each candidate is kept only if walking along the skeleton
confirms it: one long branch for an ending, three long branches for a fork. That walk also gives
the minutia direction, so short spurs, bridges of a pixel and thinning staircases do not count.

Directions follow ISO/IEC 19794-2 (section 6.5), as :class:`appliance.domain.Minutia` states:
radians counter-clockwise from +x on screen (rows grow downwards), pointing

* for a ridge ending, along the ridge, from the end into the ridge body (the bisector of the two
  valleys that flank the ridge end);
* for a bifurcation, along the valley between the two branches, away from the stem (the bisector
  of the smallest of the three angles the branches make).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# neighbour offsets (row, col) in circular order starting north, going clockwise on screen
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _neighbour_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 8-neighbourhood code: Zhang-Suen deletion in sub-pass 0 and 1, crossing number."""
    delete0 = np.zeros(256, dtype=bool)
    delete1 = np.zeros(256, dtype=bool)
    crossings = np.zeros(256, dtype=np.int8)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]  # N, NE, E, SE, S, SW, W, NW
        n = sum(p)
        a = sum(1 for i in range(8) if p[i] == 0 and p[(i + 1) % 8] == 1)
        base = 2 <= n <= 6 and a == 1
        delete0[code] = base and p[0] * p[2] * p[4] == 0 and p[2] * p[4] * p[6] == 0
        delete1[code] = base and p[0] * p[2] * p[6] == 0 and p[0] * p[4] * p[6] == 0
        crossings[code] = sum(abs(p[(i + 1) % 8] - p[i]) for i in range(8)) // 2
    return delete0, delete1, crossings


_DELETE0, _DELETE1, _CROSSINGS = _neighbour_tables()


def _codes(img: np.ndarray) -> np.ndarray:
    """8-neighbourhood code of every inner pixel of a zero-padded uint8 image."""
    rows, cols = img.shape
    code = np.zeros((rows - 2, cols - 2), dtype=np.uint8)
    for bit, (dr, dc) in enumerate(_RING):
        code |= img[1 + dr : rows - 1 + dr, 1 + dc : cols - 1 + dc] << bit
    return code


def thin(binary: np.ndarray, max_passes: int = 64) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to one-pixel-wide, 8-connected lines."""
    img = np.pad(np.asarray(binary, dtype=bool), 1).astype(np.uint8)
    inner = img[1:-1, 1:-1]
    for _ in range(max_passes):
        changed = False
        for table in (_DELETE0, _DELETE1):
            delete = table[_codes(img)] & (inner == 1)
            if delete.any():
                inner[delete] = 0
                changed = True
        if not changed:
            break
    return inner.astype(bool)


def crossing_number(skeleton: np.ndarray) -> np.ndarray:
    """Crossing number of every skeleton pixel (0 off the skeleton): 1 ending, 2 line, 3+ fork."""
    img = np.pad(np.asarray(skeleton, dtype=bool), 1).astype(np.uint8)
    cn = _CROSSINGS[_codes(img)]
    return np.where(img[1:-1, 1:-1] == 1, cn, 0).astype(np.int8)


@dataclass(frozen=True, slots=True)
class SkeletonMinutia:
    """A minutia found on a skeleton: position (col, row), ISO direction, kind 'E' or 'B'."""

    x: float
    y: float
    angle: float
    kind: str


def skeleton_minutiae(
    skeleton: np.ndarray,
    *,
    branch_length: int = 10,
    min_branch: int = 6,
    region: np.ndarray | None = None,
) -> list[SkeletonMinutia]:
    """Endings and bifurcations of a skeleton, confirmed by walking ``branch_length`` pixels.

    A branch shorter than ``min_branch`` that stops at a free end is a spur; a candidate with such
    a branch, or with other than one (ending) or three (fork) branches, is dropped.
    """
    skel = np.asarray(skeleton, dtype=bool)
    cn = crossing_number(skel)
    candidates = (cn == 1) | (cn >= 3)
    if region is not None:
        candidates &= np.asarray(region, dtype=bool)
    rows, cols = np.nonzero(candidates)
    found: list[SkeletonMinutia] = []
    reach = branch_length + 2
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        r0, c0 = max(0, r - reach), max(0, c - reach)
        window = skel[r0 : r + reach + 1, c0 : c + reach + 1]
        wr, wc = np.nonzero(window)
        pixels = set(zip((wr + r0).tolist(), (wc + c0).tolist(), strict=True))
        forks = cn[r0 : r + reach + 1, c0 : c + reach + 1]
        fr_, fc_ = np.nonzero(forks >= 3)
        junctions = set(zip((fr_ + r0).tolist(), (fc_ + c0).tolist(), strict=True))
        branches = _branches(pixels, junctions, r, c, branch_length)
        if len(branches) == 1 and branches[0][1] >= min_branch:
            (vr, vc), _, _ = branches[0]
            found.append(SkeletonMinutia(c, r, math.atan2(-vr, vc), "E"))
        elif len(branches) == 3 and all(b[1] >= min_branch for b in branches):
            found.append(SkeletonMinutia(c, r, _fork_angle([b[0] for b in branches]), "B"))
    return found


def _fork_angle(vectors: list[tuple[float, float]]) -> float:
    """Bisector of the two branches that make the smallest angle (away from the stem)."""
    units = []
    for vr, vc in vectors:
        norm = math.hypot(vr, vc) or 1.0
        units.append((vr / norm, vc / norm))
    best = None
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        dot = units[j][0] * units[k][0] + units[j][1] * units[k][1]
        if best is None or dot > best[0]:
            best = (dot, j, k)
    assert best is not None
    _, j, k = best
    br, bc = units[j][0] + units[k][0], units[j][1] + units[k][1]
    return math.atan2(-br, bc)


def _branches(
    pixels: set[tuple[int, int]],
    junctions: set[tuple[int, int]],
    r: int,
    c: int,
    length: int,
) -> list[tuple[tuple[float, float], int, bool]]:
    """Walk each branch leaving (r, c): (mean offset vector, steps walked, stopped at a fork).

    ``pixels`` are the skeleton pixels near (r, c), ``junctions`` those with crossing number 3+.
    """
    ring = [(r + dr, c + dc) for dr, dc in _RING]
    on = [p in pixels for p in ring]
    if all(on):
        return []
    runs: list[list[tuple[int, int]]] = []
    for i in range(8):
        if on[i] and not on[i - 1]:
            run = []
            j = i
            while on[j % 8] and len(run) < 8:
                run.append(ring[j % 8])
                j += 1
            runs.append(run)
    result = []
    for run in runs:
        visited = {(r, c)}
        for other in runs:
            if other is not run:
                visited.update(other)
        prev, cur = (r, c), run[0]
        path = [cur]
        fork = False
        while len(path) < length:
            if len(path) > 2 and cur in junctions:
                fork = True
                break
            best, best_d = None, -1
            for dr, dc in _RING:
                p = (cur[0] + dr, cur[1] + dc)
                if p in pixels and p not in visited:
                    d = (p[0] - prev[0]) ** 2 + (p[1] - prev[1]) ** 2
                    if d > best_d:
                        best, best_d = p, d
            if best is None:
                break
            # block the rest of cur's neighbourhood so the walk cannot double back
            visited.add(cur)
            visited.update((cur[0] + dr, cur[1] + dc) for dr, dc in _RING)
            prev, cur = cur, best
            path.append(cur)
        vr = sum(p[0] for p in path) / len(path) - r
        vc = sum(p[1] for p in path) / len(path) - c
        result.append(((vr, vc), len(path), fork))
    return result
