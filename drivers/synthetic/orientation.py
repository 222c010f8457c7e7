"""The global ridge-orientation model of a synthetic finger, with its cores and deltas.

A master print starts from a flow field that fixes the pattern class. Loops, whorls and tented
arches use the zero-pole model of Sherlock and Monro (1993): around each core the doubled ridge
angle turns once with the polar angle, around each delta once against it. As in Vizcaya and
Gerhardt (1996) each singular point's polar angle goes through a smooth, monotone correction
``g(a) = a + sum_m c_m sin(m a + p_m)`` so that no two loops look alike; a monotone ``g`` still
winds once per turn, so the model keeps exactly the cores and deltas it was given. A plain arch
has none: its field is the slope of a smooth bump. A smooth bend makes the ridges near the
fingertip follow the tip's curve; being single-valued it adds no singular point either.

Angles are in the ISO/IEC 19794-2 sense used by :class:`appliance.domain.Minutia`: radians,
counter-clockwise from +x as seen on screen, with image rows growing downwards. An orientation is
an angle modulo pi; code that averages orientations works on the doubled angle.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class FingerClass(enum.StrEnum):
    """Henry pattern class of a finger, as seen on the image (not on the finger)."""

    ARCH = "arch"
    TENTED_ARCH = "tented_arch"
    LEFT_LOOP = "left_loop"
    RIGHT_LOOP = "right_loop"
    WHORL = "whorl"

    @property
    def singular_points(self) -> tuple[int, int]:
        """How many (cores, deltas) a print of this class has."""
        return _SINGULAR_COUNTS[self]


_SINGULAR_COUNTS = {
    FingerClass.ARCH: (0, 0),
    FingerClass.TENTED_ARCH: (1, 1),
    FingerClass.LEFT_LOOP: (1, 1),
    FingerClass.RIGHT_LOOP: (1, 1),
    FingerClass.WHORL: (2, 2),
}


@dataclass(frozen=True, slots=True)
class SingularPoint:
    """A core or a delta in master-print pixels; ``warp`` is its Vizcaya-Gerhardt correction."""

    x: float
    y: float
    warp: tuple[tuple[float, float], ...] = ()

    def winding(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Corrected polar angle of every point (x, y) seen from this point."""
        a = np.arctan2(self.y - y, x - self.x)  # counter-clockwise on screen
        for m, (c, p) in enumerate(self.warp, start=1):
            a = a + c * np.sin(m * a + p)
        return a


@dataclass(frozen=True, slots=True)
class OrientationModel:
    """Ridge orientation of one master print, defined everywhere in its pixel plane."""

    finger_class: FingerClass
    cores: tuple[SingularPoint, ...]
    deltas: tuple[SingularPoint, ...]
    width: int
    height: int
    tilt: float = 0.0  # orientation far from any singular point, radians
    tip_bend: float = 0.0  # how far ridges near the fingertip bend down at the sides, radians
    tip_line: float = 0.0  # y above which the tip bend sets in
    arch_height: float = 0.0  # plain arch: height of the bump, pixels
    arch_x: float = 0.0
    arch_y: float = 0.0
    arch_spread: float = 1.0

    def doubled_angle(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Twice the ridge orientation at each (x, y); continuous away from singular points."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        two_theta = np.full(np.broadcast_shapes(x.shape, y.shape), 2.0 * self.tilt)
        for core in self.cores:
            two_theta = two_theta + core.winding(x, y)
        for delta in self.deltas:
            two_theta = two_theta - delta.winding(x, y)
        return two_theta + 2.0 * self._bend(x, y)

    def angle(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ridge orientation at each (x, y), radians in [-pi/2, pi/2)."""
        theta = 0.5 * self.doubled_angle(x, y)
        return (theta + math.pi / 2) % math.pi - math.pi / 2

    def field(self, shape: tuple[int, int], step: float = 1.0, offset: float = 0.0) -> np.ndarray:
        """Orientation sampled on a grid of ``shape`` (rows, cols).

        Grid pixel (i, j) lies at (offset + j * step, offset + i * step) in master pixels.
        """
        rows, cols = shape
        y = offset + step * np.arange(rows, dtype=np.float64)[:, None]
        x = offset + step * np.arange(cols, dtype=np.float64)[None, :]
        return self.angle(x, y)

    def _bend(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Single-valued part of the angle: fingertip curve and plain-arch bump."""
        half_width = 0.5 * self.width
        side = np.tanh((half_width - x) / (0.35 * self.width))
        above = 0.5 * (1.0 + np.tanh((self.tip_line - y) / (0.08 * self.height)))
        bend = self.tip_bend * side * above
        if self.arch_height:
            dx = x - self.arch_x
            bump = np.exp(-0.5 * (dx / self.arch_spread) ** 2)
            fade = np.exp(-(((y - self.arch_y) / (0.32 * self.height)) ** 2))
            slope = self.arch_height * fade * (-dx / self.arch_spread**2) * bump
            bend = bend + np.arctan(slope)
        return bend


def random_model(
    rng: np.random.Generator, finger_class: FingerClass, width: int, height: int
) -> OrientationModel:
    """Draw an orientation model of ``finger_class`` for a master of ``width`` x ``height``.

    Cores sit near the middle, a little above half height; deltas below and to the side, about
    ten to fifteen ridges from the core, as on real rolled prints. A left loop opens to the left
    of the image, so its delta lies to the right of the core; a right loop is the mirror image.
    """
    w, h = float(width), float(height)
    cx = w * (0.5 + rng.uniform(-0.05, 0.05))
    cy = h * rng.uniform(0.38, 0.48)

    def warp(strength: float) -> tuple[tuple[float, float], ...]:
        c1 = rng.uniform(-strength, strength)
        c2 = rng.uniform(-strength, strength) * 0.5
        # a monotone g keeps the winding number: |c1| + 2|c2| < 1
        return ((c1, rng.uniform(0, 2 * math.pi)), (c2, rng.uniform(0, 2 * math.pi)))

    cores: list[SingularPoint] = []
    deltas: list[SingularPoint] = []
    arch = {}
    if finger_class in (FingerClass.LEFT_LOOP, FingerClass.RIGHT_LOOP):
        side = 1.0 if finger_class is FingerClass.LEFT_LOOP else -1.0
        cores.append(SingularPoint(cx, cy, warp(0.25)))
        dx = side * w * rng.uniform(0.15, 0.24)
        dy = h * rng.uniform(0.13, 0.21)
        deltas.append(SingularPoint(cx + dx, cy + dy, warp(0.2)))
    elif finger_class is FingerClass.TENTED_ARCH:
        cores.append(SingularPoint(cx, cy, warp(0.1)))
        dy = h * rng.uniform(0.1, 0.16)
        deltas.append(SingularPoint(cx + w * rng.uniform(-0.02, 0.02), cy + dy, warp(0.1)))
    elif finger_class is FingerClass.WHORL:
        sep = rng.uniform(12.0, 50.0)
        turn = rng.uniform(0, 2 * math.pi)
        ox, oy = 0.5 * sep * math.cos(turn), 0.5 * sep * math.sin(turn)
        cores.append(SingularPoint(cx - ox, cy - oy, warp(0.15)))
        cores.append(SingularPoint(cx + ox, cy + oy, warp(0.15)))
        for side in (-1.0, 1.0):
            dx = side * w * rng.uniform(0.18, 0.25)
            dy = h * rng.uniform(0.14, 0.22)
            deltas.append(SingularPoint(cx + dx, cy + dy, warp(0.15)))
    else:
        spread = w * rng.uniform(0.14, 0.2)
        arch = {
            "arch_height": spread * rng.uniform(0.9, 2.0),
            "arch_x": cx,
            "arch_y": h * rng.uniform(0.42, 0.55),
            "arch_spread": spread,
        }
    return OrientationModel(
        finger_class=finger_class,
        cores=tuple(cores),
        deltas=tuple(deltas),
        width=width,
        height=height,
        tilt=rng.uniform(-0.05, 0.05),
        tip_bend=rng.uniform(0.35, 0.6),
        tip_line=cy - h * rng.uniform(0.12, 0.2),
        **arch,
    )


def poincare_singularities(
    theta: np.ndarray, mask: np.ndarray | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Cores and deltas of an orientation field by the Poincare index of each 2x2 cell.

    ``theta`` holds orientations (radians, counter-clockwise on screen, modulo pi) on a grid;
    the result lists (col, row) cell centres in grid units: index +1/2 is a core, -1/2 a delta
    (a cell with two of a kind is listed twice).
    Cells touching a False entry of ``mask`` are skipped.
    """
    two = 2.0 * np.asarray(theta, dtype=np.float64)
    # counter-clockwise on screen: down the left side, right along the bottom, up, back left
    loop = (two[:-1, :-1], two[1:, :-1], two[1:, 1:], two[:-1, 1:], two[:-1, :-1])
    total = np.zeros_like(loop[0])
    for a, b in zip(loop[:-1], loop[1:], strict=True):
        total += (b - a + math.pi) % (2 * math.pi) - math.pi
    index = np.rint(total / (2 * math.pi)).astype(int)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        index[~(m[:-1, :-1] & m[1:, :-1] & m[1:, 1:] & m[:-1, 1:])] = 0
    cores: list[tuple[float, float]] = []
    deltas: list[tuple[float, float]] = []
    for r, c in zip(*np.nonzero(index), strict=True):
        k = int(index[r, c])
        # a cell holding two singular points of one kind has index +-2 (doubled angle)
        (cores if k > 0 else deltas).extend([(float(c) + 0.5, float(r) + 0.5)] * abs(k))
    return cores, deltas
