"""Contact geometry: where each point of a master finger lands on the platen.

A finger is close to a cylinder whose skin the master lays flat (its width is half the
circumference, nail edge to nail edge). Pressed flat, the platen sees the middle of that skin,
foreshortened towards the sides (x = R sin(s / R) for arc length s). Rolled, the finger rolls
without slipping, so the platen sees the skin unrolled; a live roll shows, at each moment, a flat
contact centred on the current roll angle.

On top of that the skin slides while pressed. Following Cappelli, Maio and Maltoni (2001), the
middle of the contact sticks to the glass, the rim moves with the finger's small twist and push,
and a brake function blends the two; a gentle wobble breaks the symmetry. The displacement field
is stated as image-to-skin (what rendering needs); the forward map of the few minutiae solves it
by fixed-point iteration, which converges because the field is smooth and small.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class ContactMode(enum.StrEnum):
    """How the finger touches: a plain press, a finished roll, or one moment of a roll."""

    FLAT = "flat"
    ROLLED = "rolled"
    ROLLING = "rolling"


@dataclass(frozen=True, slots=True)
class Contact:
    """One placement of a master on a canvas. Lengths in pixels, angles in radians.

    The contact frame has its origin at ``center`` on the canvas, turned by ``angle``
    (counter-clockwise on screen); its origin touches master point ``skin_center``.
    """

    mode: ContactMode
    center: tuple[float, float]
    angle: float
    radius: float
    skin_center: tuple[float, float]
    half_width: float
    half_height: float
    exponent: float = 2.4
    roll: float = 0.0  # ROLLING: current roll angle
    roll_limits: tuple[float, float] = (1.4, 1.4)  # ROLLED/ROLLING: arc reached each side
    stretch: float = 1.0  # ROLLED: horizontal stretch of the unrolled skin
    push: tuple[float, float] = (0.0, 0.0)  # rim displacement (x, y) in the contact frame
    twist: float = 0.0  # rim rotation
    wobble: tuple[tuple[float, float, float, float, float], ...] = ()  # (kx, ky, phase, ax, ay)
    lift: tuple[float, float, float] | None = None  # partial contact: (nx, ny, offset) half-plane

    # -- canvas <-> contact frame ------------------------------------------------------------

    def to_frame(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas pixels to the contact frame."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = qx - self.center[0], qy - self.center[1]
        # the frame is turned counter-clockwise on screen (rows grow downwards)
        return c * dx - s * dy, s * dx + c * dy

    def from_frame(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Contact frame to canvas pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.center[0] + c * u + s * v, self.center[1] - s * u + c * v

    # -- skin sliding ----------------------------------------------------------------------

    def displacement(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Skin displacement at frame point (u, v): none mid-contact, push and twist at the rim."""
        return self._slide(u, v, self._radius(u, v))

    def _slide(self, u: np.ndarray, v: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.clip((s - 0.3) * 1.25, 0.0, 1.0)
        brake = t * t * (3.0 - 2.0 * t)
        ct, st = math.cos(self.twist) - 1.0, math.sin(self.twist)
        dx = brake * (ct * u + st * v + self.push[0])
        dy = brake * (-st * u + ct * v + self.push[1])
        for kx, ky, phase, ax, ay in self.wobble:
            w = np.sin(kx * u + ky * v + phase)
            dx = dx + ax * w
            dy = dy + ay * w
        return dx, dy

    def _radius(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Superellipse radius of (u, v): 1 on the nominal contact outline.

        ``(|a|^p + |b|^p)^(1/p)`` is approximated by the Euclidean radius shrunk towards the
        diagonals by the superellipse's own factor ``2^(1/p - 1/2)``: the shape is the same to a
        percent and costs no power function on every pixel.
        """
        cu = u - self.radius * self.roll if self.mode is ContactMode.ROLLING else u
        a2 = (cu * (1.0 / self.half_width)) ** 2
        b2 = (v * (1.0 / self.half_height)) ** 2
        r2 = a2 + b2
        shrink = 1.0 - 2.0 ** (1.0 / self.exponent - 0.5)
        return np.sqrt(r2) * (1.0 - shrink * 4.0 * a2 * b2 / (r2 * r2 + 1e-12))

    # -- skin <-> platen -------------------------------------------------------------------

    def to_master(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas pixels to master pixels."""
        mx, my, _ = self.trace(qx, qy)
        return mx, my

    def trace(
        self, qx: np.ndarray, qy: np.ndarray, rim: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canvas pixels to master pixels, with the contact pressure there.

        The pressure is that of :meth:`pressure`, without the master's skin outline.
        """
        u, v = self.to_frame(qx, qy)
        s = self._radius(u, v)
        dx, dy = self._slide(u, v, s)
        pu, pv = u - dx, v - dy
        r = self.radius
        if self.mode is ContactMode.FLAT:
            arc = r * np.arcsin(np.clip(pu * (1.0 / r), -1.0, 1.0))
        elif self.mode is ContactMode.ROLLED:
            arc = pu * self.stretch
        else:
            lean = np.clip((pu - r * self.roll) * (1.0 / r), -1.0, 1.0)
            arc = r * (self.roll + np.arcsin(lean))
        mx = self.skin_center[0] + arc
        return mx, self.skin_center[1] + pv, self._pressure(u, v, s + rim, mx, rim)

    def from_master(self, mx: np.ndarray, my: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Master pixels to canvas pixels (points on the far side of the finger give NaN)."""
        mx = np.asarray(mx, dtype=np.float64)
        my = np.asarray(my, dtype=np.float64)
        r = self.radius
        arc = mx - self.skin_center[0]
        if self.mode is ContactMode.FLAT:
            pu = np.where(np.abs(arc) < 0.5 * math.pi * r, r * np.sin(arc / r), np.nan)
        elif self.mode is ContactMode.ROLLED:
            pu = arc / self.stretch
        else:
            lean = arc / r - self.roll
            pu = np.where(np.abs(lean) < 0.5 * math.pi, r * (self.roll + np.sin(lean)), np.nan)
        pv = my - self.skin_center[1]
        u, v = pu.copy(), pv.copy()
        for _ in range(12):
            dx, dy = self.displacement(u, v)
            u, v = pu + dx, pv + dy
        return self.from_frame(u, v)

    # -- how hard the skin presses ----------------------------------------------------------

    def pressure(
        self,
        u: np.ndarray,
        v: np.ndarray,
        mx: np.ndarray,
        rim: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Contact pressure in [0, 1] at frame point (u, v), master column ``mx``.

        1 in the middle of the contact, 0 off it. ``rim`` roughens the outline (a small
        smooth noise added to the superellipse radius); the skin's own outline (the master's
        mask) is applied by the renderer.
        """
        return self._pressure(u, v, self._radius(u, v) + rim, mx, rim)

    def _pressure(
        self,
        u: np.ndarray,
        v: np.ndarray,
        s: np.ndarray,
        mx: np.ndarray,
        rim: np.ndarray | float,
    ) -> np.ndarray:
        p = np.clip((1.0 - s) * (1.0 / 0.22), 0.0, 1.0)
        if self.mode is not ContactMode.FLAT:
            # the roll reaches less far towards the tip and the crease than at mid height
            lo, hi = self.roll_limits
            short = 0.25 * (v * (1.0 / self.half_height)) ** 2 + rim
            arc = (mx - self.skin_center[0]) * (1.0 / self.radius)
            p = p * np.clip((arc + lo - short) * 5.0, 0.0, 1.0)
            p = p * np.clip((hi - short - arc) * 5.0, 0.0, 1.0)
        if self.lift is not None:
            nx, ny, off = self.lift
            p = p * np.clip((nx * u + ny * v - off) * (1.0 / 25.0), 0.0, 1.0)
        return np.sqrt(p)

    def bounds(self, margin: float = 24.0) -> tuple[float, float, float, float]:
        """Canvas box (x0, y0, x1, y1) that holds the whole contact."""
        cu = self.radius * self.roll if self.mode is ContactMode.ROLLING else 0.0
        hw, hh = self.half_width + margin, self.half_height + margin
        corners = np.array([(cu - hw, -hh), (cu + hw, -hh), (cu + hw, hh), (cu - hw, hh)])
        x, y = self.from_frame(corners[:, 0], corners[:, 1])
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def draw_contact(
    rng: np.random.Generator,
    mode: ContactMode,
    *,
    master_size: tuple[int, int],
    radius: float,
    center: tuple[float, float],
    angle: float,
    quality: float = 1.0,
    distortion: float = 1.0,
    pressure: float = 0.5,
    partial: bool = False,
) -> Contact:
    """Draw a random but plausible contact of a master of ``master_size`` (width, height).

    ``pressure`` in [0, 1] widens the flat contact (harder press, more skin on the glass);
    ``distortion`` scales the skin sliding (0 turns it off); poorer ``quality`` slides more.
    """
    w, h = master_size
    slide = distortion * (1.6 - 0.6 * quality)
    push = rng.normal(0.0, 5.0 * slide, 2) if slide else np.zeros(2)
    twist = float(rng.normal(0.0, math.radians(2.0) * slide)) if slide else 0.0
    wobble: list[tuple[float, float, float, float, float]] = []
    if slide:
        for _ in range(2):
            k = 2 * math.pi / rng.uniform(150.0, 400.0)
            d = rng.uniform(0.0, 2 * math.pi)
            amp = rng.normal(0.0, 1.0 * slide, 2)
            wobble.append(
                (k * math.cos(d), k * math.sin(d), rng.uniform(0, 2 * math.pi), amp[0], amp[1])
            )
    lift = None
    if partial:
        d = rng.uniform(0.0, 2 * math.pi)
        nx, ny = math.cos(d), math.sin(d)
        reach = abs(nx) * 0.4 * radius + abs(ny) * 0.35 * h
        lift = (nx, ny, -reach * rng.uniform(0.2, 0.7))
    if mode is ContactMode.FLAT:
        half_angle = math.radians(48.0 + 14.0 * pressure + rng.uniform(-3.0, 3.0))
        return Contact(
            mode=mode,
            center=center,
            angle=angle,
            radius=radius,
            skin_center=(0.5 * w + rng.uniform(-0.02, 0.02) * w, h * rng.uniform(0.40, 0.45)),
            half_width=radius * math.sin(half_angle),
            half_height=h * rng.uniform(0.31, 0.35) * (0.95 + 0.1 * pressure),
            exponent=rng.uniform(2.1, 2.6),
            push=(float(push[0]), float(push[1])),
            twist=twist,
            wobble=tuple(wobble),
            lift=lift,
        )
    limits = (rng.uniform(1.2, 1.45), rng.uniform(1.2, 1.45))
    return Contact(
        mode=mode,
        center=center,
        angle=angle,
        radius=radius,
        skin_center=(0.5 * w, 0.47 * h),
        half_width=radius * 1.6,
        half_height=0.5 * h,
        exponent=3.0,
        roll_limits=limits,
        stretch=1.0 + rng.uniform(-0.03, 0.03) * distortion,
        push=(float(push[0]), float(push[1])),
        twist=twist * 0.5,
        wobble=tuple((kx, ky, ph, 2 * ax, ay) for kx, ky, ph, ax, ay in wobble),
        lift=lift,
    )
