"""Slap segmentation: find each fingertip in a four-finger or two-thumb slap and number it.

A slap (ANSI/NIST-ITL positions 13, 14, 15) is segmented before NFIQ 2 and the sequence check,
which both work on single fingers, and the transaction records where each finger was found
(Type-14 field 14.021, with the rotated boxes as 14.025 polygons).

Image convention (livescan and ink card alike): fingers point up, the image shows the prints as
if looking down through the back of the hand, so a right-hand slap shows index, middle, ring,
little from left to right, a left-hand slap little, ring, middle, index, and a thumb slap the
left thumb left of the right thumb (:data:`appliance.domain.SLAP_FINGERS`).

Method (numpy only): :mod:`appliance.imaging.fingertips` finds the fingertips as rotated boxes
on a ridge-texture map; here the strongest, at most the number expected, are numbered left to
right, cropped and reported. When fewer are found, their place in the hand is inferred from the
heights of their tips (the middle finger reaches highest, the little finger lowest) and flagged;
fingers the officer annotated as absent are not looked for, which makes the numbering exact.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from appliance.domain import SLAP_FINGERS, Position
from appliance.imaging.fingertips import FingerBox, Tip, find_tips
from appliance.imaging.resample import NATIVE_PPI, as_gray_u8, resample

__all__ = ["FingerBox", "SegmentedFinger", "SlapSegmentation", "segment_slap"]

BACKGROUND = 242  # gray level painted outside a finger's box in its crop
#: How a right hand's fingertips (index to little) lie on the glass: drop below the highest
#: tip, in finger widths. Used only to number a slap with fingers missing.
HAND_TIP_DROP = (0.25, 0.0, 0.15, 0.65)


@dataclass(slots=True)
class SegmentedFinger:
    """One fingertip found in a slap."""

    position: Position
    box: FingerBox  # in the slap image's own pixels
    bounds: tuple[int, int, int, int]  # left, top, right, bottom (inclusive), slap pixels
    image: np.ndarray  # the fingertip within ``bounds``, at 500 ppi, background outside ``box``
    confidence: float  # mean ridge score of the fingertip (0..1)


@dataclass(slots=True)
class SlapSegmentation:
    """The fingertips of one slap, numbered, left to right in the image."""

    slap: Position
    ppi: float
    shape: tuple[int, int]
    fingers: list[SegmentedFinger] = field(default_factory=list)
    missing: list[Position] = field(default_factory=list)
    positions_inferred: bool = False  # fewer fingers than expected: numbering is a best guess

    @property
    def expected(self) -> int:
        """How many fingertips this slap shows with all fingers present."""
        return len(SLAP_FINGERS[self.slap])

    @property
    def complete(self) -> bool:
        """True when every expected finger was found."""
        return not self.missing

    def crops(self) -> dict[Position, np.ndarray]:
        """Each finger's image (500 ppi), by position."""
        return {f.position: f.image for f in self.fingers}

    def segment_positions(self) -> list[dict[str, int]]:
        """Type-14 field 14.021 (SEG): finger number and left/right/top/bottom pixel bounds."""
        return [
            {
                "finger": int(f.position),
                "left": f.bounds[0],
                "right": f.bounds[2],
                "top": f.bounds[1],
                "bottom": f.bounds[3],
            }
            for f in self.fingers
        ]

    def alternate_segment_positions(self) -> list[dict[str, object]]:
        """Type-14 field 14.025 (ASEG): finger number and the rotated box as a polygon."""
        h, w = self.shape
        out: list[dict[str, object]] = []
        for f in self.fingers:
            corners = f.box.corners()
            points = [
                (int(round(np.clip(x, 0, w - 1))), int(round(np.clip(y, 0, h - 1))))
                for x, y in corners
            ]
            out.append({"finger": int(f.position), "points": points})
        return out


def segment_slap(
    image: np.ndarray,
    slap: Position,
    ppi: float = NATIVE_PPI,
    *,
    absent: Collection[Position] = (),
) -> SlapSegmentation:
    """Find, number and crop the fingertips of slap ``slap`` (13, 14 or 15).

    ``image`` is uint8 with dark ridges on a light background, at ``ppi``. ``absent`` lists
    fingers of this slap the officer annotated as amputated or unable to print (XX/UP): they
    are not looked for, so the others are numbered without guessing. Never raises for a poor
    image: a slap without prints comes back with every finger listed as missing.
    """
    if slap not in SLAP_FINGERS:
        raise ValueError(f"{slap!r} is not a slap position (13, 14 or 15)")
    gray = as_gray_u8(image)
    if gray is None:
        raise ValueError("a slap image is a 2-D uint8 array")
    work = resample(gray, ppi)
    scale = float(ppi) / NATIVE_PPI  # work pixels -> caller's pixels
    order = tuple(p for p in SLAP_FINGERS[slap] if p not in set(absent))
    result = SlapSegmentation(slap=slap, ppi=float(ppi), shape=gray.shape)
    if not order:
        return result
    tips = find_tips(work, len(order), thumbs=slap is Position.PLAIN_THUMBS)
    tips.sort(key=lambda t: t.box.cx)
    positions, inferred = _number(tips, order, work.shape[1])
    result.positions_inferred = inferred
    for tip, position in zip(tips, positions, strict=True):
        box = tip.box.scaled(scale)
        result.fingers.append(
            SegmentedFinger(
                position=position,
                box=box,
                bounds=_bounds(tip.extent, scale, gray.shape),
                image=_crop(work, tip.box, _bounds(tip.extent, 1.0, work.shape)),
                confidence=tip.confidence,
            )
        )
    found = {f.position for f in result.fingers}
    result.missing = [p for p in order if p not in found]
    return result


# ---- numbering and cropping --------------------------------------------------------------------


def _number(
    tips: list[Tip], order: tuple[Position, ...], image_width: int
) -> tuple[list[Position], bool]:
    """Positions for tips sorted left to right, and whether they had to be inferred.

    With fingers missing, every order-keeping choice of places is scored against the heights
    at which a hand's fingertips lie on the glass (middle highest, little finger lowest). The
    fingers' lean and the gaps between them were tried too and made the guess worse on
    synthetic hands (docs/quality.md); the guess is flagged, and the officer's amputation
    annotations (``absent``) make it unnecessary.
    """
    n, expected = len(tips), len(order)
    if n == expected or n == 0:
        return list(order[:n]), False
    if order == SLAP_FINGERS[Position.PLAIN_THUMBS]:  # one thumb: its side of the platen
        return [order[0] if tips[0].box.cx < image_width / 2 else order[1]], True
    if expected != 4:  # some fingers annotated absent and still fewer found: keep the order
        return list(order[:n]), True
    right_hand = order[0] == Position.RIGHT_INDEX
    heights = np.array(HAND_TIP_DROP if right_hand else HAND_TIP_DROP[::-1])
    width = float(np.median([t.box.width for t in tips]))
    seen = np.array([t.tip[1] for t in tips]) / width
    best: tuple[int, ...] = tuple(range(n))
    best_err = math.inf
    for places in itertools.combinations(range(expected), n):
        expect = heights[np.array(places)]
        err = float(np.sum(((seen - seen.mean()) - (expect - expect.mean())) ** 2))
        if err < best_err:
            best, best_err = places, err
    return [order[k] for k in best], True


def _bounds(
    extent: tuple[float, float, float, float], scale: float, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Inclusive integer (left, top, right, bottom) in the caller's pixels, inside the image."""
    h, w = shape
    left, top, right, bottom = (v * scale for v in extent)
    return (
        int(np.clip(math.floor(left), 0, w - 1)),
        int(np.clip(math.floor(top), 0, h - 1)),
        int(np.clip(math.ceil(right), 0, w - 1)),
        int(np.clip(math.ceil(bottom), 0, h - 1)),
    )


def _crop(work: np.ndarray, box: FingerBox, bounds: tuple[int, int, int, int]) -> np.ndarray:
    """The fingertip's ``bounds`` cut from ``work``, background outside its rotated ``box``."""
    left, top, right, bottom = bounds
    crop = work[top : bottom + 1, left : right + 1].copy()
    ys, xs = np.mgrid[top : bottom + 1, left : right + 1]
    a = math.radians(box.angle)
    c, s = math.cos(a), math.sin(a)
    dx, dy = xs - box.cx, ys - box.cy
    lx = c * dx - s * dy  # inverse of FingerBox.corners' rotation
    ly = s * dx + c * dy
    outside = (np.abs(lx) > box.width / 2) | (np.abs(ly) > box.height / 2)
    crop[outside] = BACKGROUND
    return crop
