"""Fingertips in a slap image: where the prints are, how each finger leans, where it ends.

The first half of slap segmentation (:mod:`appliance.imaging.segmentation` numbers and crops
what is found here). All work is on a ridge-texture grid, 16 px at 500 ppi: the share of each
window's energy at ridge frequencies times its contrast (computed at 250 ppi, which keeps a
1600x1500 slap near 0.1 s) tells prints from paper, text, pen marks and black registration dots.
Regions of that map are fingers, finger groups or lower phalanges: a region as wide as two
fingers is split at its weakest column, a finger's lean is its principal axis, its distal phalanx
ends at the crease (the weakest row of texture between 0.75 and 1.9 finger widths below the tip)
or 1.55 widths below the tip, and a region lying below another finger along its axis is a
phalanx, not a tip.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from appliance.domain import FingerBox
from appliance.imaging.measures import ridge_texture
from appliance.imaging.resample import NATIVE_PPI, resample

GRID = 16  # texture grid step at 500 ppi, pixels
TEXTURE_THRESHOLD = (0.22, 0.4)  # bounds of the ridge score above which a cell is print
SECOND_LOOK = 0.7  # threshold factor for the second look when fingers are missing
FINGER_WIDTH_MM, THUMB_WIDTH_MM = 16.0, 21.0  # typical fingertip widths in a slap
MIN_FINGER_MM2 = 70.0  # a fingertip region smaller than this is a speck or a partial print
DISTAL_RATIO = 1.55  # distal phalanx length / width when no crease shows
CREASE_RANGE = (0.75, 1.9)  # where to look for the distal crease, in finger widths
CREASE_DEPTH = 0.6  # a crease row keeps less than this share of the tip's texture




@dataclass(slots=True)
class Tip:
    """A fingertip found in a slap, in 500 ppi pixels."""

    box: FingerBox
    strength: float  # texture mass of the distal part
    confidence: float
    axis: tuple[float, float]  # unit vector from base to tip
    tip: tuple[float, float]
    extent: tuple[float, float, float, float]  # left, top, right, bottom of the distal cells


def find_tips(work: np.ndarray, expected: int, *, thumbs: bool) -> list[Tip]:
    """The strongest fingertip candidates, at most ``expected``.

    When fewer than expected stand out, a second look at a lower texture threshold picks up
    faint or broken prints (light ink, a finger under a printed box) beside the ones found.
    """
    half = resample(work, NATIVE_PPI, NATIVE_PPI / 2)
    texture = ridge_texture(half, NATIVE_PPI / 2, step=GRID // 2, window=GRID)
    score = texture.score * (texture.mean > 40.0)  # black dots and borders are not skin
    smooth = _box_mean(score)
    # Ink cards and platens differ in contrast: the cut follows the strongest prints.
    threshold = float(np.clip(0.5 * np.percentile(smooth, 95), *TEXTURE_THRESHOLD))
    width_px = (THUMB_WIDTH_MM if thumbs else FINGER_WIDTH_MM) * 500 / 25.4
    tips = _tips_above(smooth, threshold, width_px, expected)
    if len(tips) < expected:
        for extra in _tips_above(smooth, SECOND_LOOK * threshold, width_px, expected):
            if len(tips) < expected and not any(_overlap(extra, t) for t in tips):
                tips.append(extra)
    return tips


def _tips_above(
    smooth: np.ndarray, threshold: float, width_px: float, expected: int
) -> list[Tip]:
    """Fingertips in the regions where the smoothed ridge score exceeds ``threshold``."""
    mask = _open3(smooth > threshold)  # drops text lines and pen strokes under 3 cells thick
    min_cells = MIN_FINGER_MM2 * (500 / 25.4) ** 2 / GRID**2
    candidates: list[Tip] = []
    for cells in _components(mask):
        if len(cells) < min_cells:
            continue
        for part in _split_wide(cells, width_px):
            if len(part) >= min_cells:
                tip = _fingertip(part, smooth, width_px)
                if tip is not None:
                    candidates.append(tip)
    tips = [t for t in candidates if not _below_another(t, candidates)]
    tips.sort(key=lambda t: t.strength, reverse=True)
    strongest = tips[0].strength if tips else 0.0
    return [t for t in tips[:expected] if t.strength >= 0.2 * strongest]


def _overlap(a: Tip, b: Tip) -> bool:
    """True when two candidates' extents overlap by more than a fifth of the smaller one."""
    ax0, ay0, ax1, ay1 = a.extent
    bx0, by0, bx1, by1 = b.extent
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    smaller = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
    return inter > 0.2 * smaller


def _box_mean(a: np.ndarray) -> np.ndarray:
    """3x3 mean with edge padding."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0


def _open3(mask: np.ndarray) -> np.ndarray:
    """Morphological opening with a 3x3 square: erosion, then dilation."""
    h, w = mask.shape
    p = np.pad(mask, 1)
    eroded = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            eroded &= p[dy : dy + h, dx : dx + w]
    p = np.pad(eroded, 1)
    opened = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            opened |= p[dy : dy + h, dx : dx + w]
    return opened


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected regions of ``mask`` as arrays of (row, col) cells."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    regions: list[np.ndarray] = []
    for r0, c0 in zip(*np.nonzero(mask), strict=True):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        queue, cells = deque([(r0, c0)]), []
        while queue:
            r, c = queue.popleft()
            cells.append((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        regions.append(np.array(cells, dtype=np.int32))
    return regions


def _centres(cells: np.ndarray) -> np.ndarray:
    """Image (x, y) at 500 ppi of grid cells (window centres)."""
    return np.stack([cells[:, 1] * GRID + GRID, cells[:, 0] * GRID + GRID], axis=1).astype(
        np.float64
    )


def _axis(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (along, across) of a region; ``along`` points up the finger (y < 0).

    A region barely longer than wide (a tip cut by the image edge) says little about its lean,
    so its angle is shrunk towards upright, fully so below an elongation of 1.1.
    """
    centred = points - points.mean(axis=0)
    cov = centred.T @ centred / max(1, len(points) - 1)
    values, vectors = np.linalg.eigh(cov)
    along = vectors[:, int(np.argmax(values))]
    if along[1] > 0:
        along = -along
    angle = math.atan2(-along[0], -along[1])
    elongation = math.sqrt(float(values.max()) / max(float(values.min()), 1e-6))
    angle *= float(np.clip((elongation - 1.1) / 0.5, 0.0, 1.0))
    if abs(angle) > math.radians(55):  # fingers in a slap lean less than 55 degrees
        angle = 0.0
    along = np.array([-math.sin(angle), -math.cos(angle)])
    across = np.array([math.cos(angle), -math.sin(angle)])
    return along, across


def _split_wide(cells: np.ndarray, width_px: float) -> list[np.ndarray]:
    """Split a region as wide as several fingers at its weakest columns across its axis."""
    points = _centres(cells)
    along, across = _axis(points)
    v = (points - points.mean(axis=0)) @ across
    span = np.percentile(v, 98) - np.percentile(v, 2)
    parts = int(round(span / width_px))
    if parts <= 1 or span < 1.6 * width_px:
        return [cells]
    bins = np.arange(v.min(), v.max() + GRID, GRID)
    counts, _ = np.histogram(v, bins=bins)
    cuts: list[float] = []
    for k in range(1, parts):
        target = v.min() + k * (v.max() - v.min()) / parts
        window = np.abs(bins[:-1] - target) <= 0.35 * width_px
        if not window.any():
            continue
        idx = np.flatnonzero(window)
        best = idx[int(np.argmin(counts[idx]))]
        cuts.append(bins[best] + GRID / 2)
    edges = [-np.inf, *cuts, np.inf]
    return [cells[(v >= lo) & (v < hi)] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _fingertip(cells: np.ndarray, smooth: np.ndarray, width_px: float) -> Tip | None:
    """The distal phalanx of one finger region, or None when the region is not finger-like."""
    points = _centres(cells)
    along, across = _axis(points)
    u = points @ along  # larger is nearer the tip
    v = points @ across
    tip_u = float(np.percentile(u, 99))
    depth = np.maximum(tip_u - u, 0.0)  # distance below the tip along the finger
    width = float(np.percentile(v, 98) - np.percentile(v, 2)) + GRID
    if width < 0.45 * width_px or width > 2.2 * width_px:
        return None
    strength_map = smooth[cells[:, 0], cells[:, 1]]
    length = _distal_length(depth, strength_map, width)
    keep = depth <= length
    if keep.sum() < 4:
        return None
    v_keep = v[keep]
    v_lo, v_hi = float(np.percentile(v_keep, 1)), float(np.percentile(v_keep, 99))
    width = v_hi - v_lo + GRID
    centre_u = tip_u + GRID / 2 - length / 2
    centre_v = (v_lo + v_hi) / 2
    cx, cy = centre_u * along + centre_v * across
    angle = math.degrees(math.atan2(-along[0], -along[1]))
    box = FingerBox(float(cx), float(cy), width, length, angle)
    tip = centre_u * along + centre_v * across + (length / 2) * along
    confidence = float(strength_map[keep].mean())
    kept = points[keep]
    half = GRID / 2  # a cell stands for the GRID x GRID square around its centre
    extent = (
        float(kept[:, 0].min() - half),
        float(kept[:, 1].min() - half),
        float(kept[:, 0].max() + half),
        float(kept[:, 1].max() + half),
    )
    return Tip(
        box=box,
        strength=float(strength_map[keep].sum()),
        confidence=confidence,
        axis=(float(along[0]), float(along[1])),
        tip=(float(tip[0]), float(tip[1])),
        extent=extent,
    )


def _distal_length(depth: np.ndarray, strength: np.ndarray, width: float) -> float:
    """Length of the distal phalanx below the tip: to the crease, else DISTAL_RATIO widths."""
    extent = float(depth.max()) + GRID / 2
    rows = np.floor(depth / GRID).astype(int)
    mass = np.bincount(rows, weights=strength)
    lo, hi = (int(r * width / GRID) for r in CREASE_RANGE)
    if hi > lo and len(mass) > lo + 1:
        reference = float(np.median(mass[: max(lo, 1)]))
        window = mass[lo : min(hi, len(mass) - 1) + 1]
        if window.size and reference > 0:
            k = int(np.argmin(window))
            if window[k] < CREASE_DEPTH * reference:
                return float((lo + k) * GRID + GRID / 2)
    return min(extent, DISTAL_RATIO * width)


def _below_another(tip: Tip, others: list[Tip]) -> bool:
    """True when ``tip`` lies below another finger along that finger's axis (a phalanx)."""
    for other in others:
        if other is tip:
            continue
        ax, ay = other.axis
        dx, dy = tip.tip[0] - other.tip[0], tip.tip[1] - other.tip[1]
        below = -(dx * ax + dy * ay)  # distance down the other finger
        lateral = abs(dx * -ay + dy * ax)
        if below > 0.5 * other.box.height and lateral < 0.45 * other.box.width:
            return True
    return False
