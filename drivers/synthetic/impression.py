"""Impressions of a master finger: flat presses, rolled prints and the frames of a live roll.

Each impression draws a contact (placement, pressure, skin sliding), inks it, exposes it as a
livescan would, and carries the master's true minutiae through the same geometry, dropping those
that fall off the contact. Lower ``quality`` means more noise, more sliding, patchier ink and
sometimes a partial contact; ``moisture`` runs from -1 (dry: broken, faint ridges) through 0 to
+1 (wet: fat, merged ridges, grey valleys).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from appliance.domain import Minutia
from drivers.synthetic.contact import Contact, ContactMode, draw_contact
from drivers.synthetic.inking import Window, bilinear, draw_exposure, expose, ink_window

PPI = 500
#: Master size (width, height) in pixels at 500 ppi for an index finger.
MASTER_SIZE = (560, 640)
#: Default flat canvas (width, height) for a master of the default size; scaled with the master.
FLAT_SIZE = (400, 500)
#: Default rolled canvas (width, height): the 1.6 x 1.5 in box of a ten-print card at 500 ppi.
ROLLED_SIZE = (800, 750)
_KEEP_PRESSURE = 0.35  # minutiae where the contact is weaker than this are not in the print
_MASK_PRESSURE = 0.12


class MasterFinger(Protocol):
    """What rendering needs of a finger (:class:`drivers.synthetic.master.MasterFinger`)."""

    true_minutiae: tuple[Minutia, ...]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the master in pixels."""

    @property
    def ridges(self) -> np.ndarray:
        """The master's ridge map."""

    @property
    def skin(self) -> np.ndarray:
        """Soft skin outline in [0, 1]."""

    @property
    def cylinder_radius(self) -> float:
        """Radius of the finger in pixels."""


@dataclass(frozen=True, eq=False)
class SyntheticImpression:
    """One rendered impression: uint8 image (dark ridges), contact mask, minutiae in its pixels."""

    image: np.ndarray = field(repr=False)
    minutiae: list[Minutia] = field(repr=False)
    mask: np.ndarray = field(repr=False)
    contact: Contact
    rolled: bool = False
    ppi: int = PPI


def default_size(master: MasterFinger, rolled: bool) -> tuple[int, int]:
    """Canvas (width, height) used when the caller gives none."""
    if rolled:
        return ROLLED_SIZE
    w, h = master.size
    return (
        int(FLAT_SIZE[0] * w / MASTER_SIZE[0]) // 2 * 2,
        int(FLAT_SIZE[1] * h / MASTER_SIZE[1]) // 2 * 2,
    )


def render(
    master: MasterFinger,
    rng: np.random.Generator,
    *,
    rolled: bool = False,
    quality: float = 1.0,
    moisture: float = 0.0,
    size: tuple[int, int] | None = None,
    distortion: float = 1.0,
) -> SyntheticImpression:
    """Render a flat (default) or rolled impression of ``master``.

    ``quality`` in [0, 1], ``moisture`` in [-1, 1], ``distortion`` scales skin sliding (0: the
    only geometry is rotation, translation and, for a flat press, the finger's curvature).
    """
    quality = float(np.clip(quality, 0.0, 1.0))
    moisture = float(np.clip(moisture, -1.0, 1.0))
    width, height = size or default_size(master, rolled)
    mode = ContactMode.ROLLED if rolled else ContactMode.FLAT
    if rolled:
        angle = math.radians(float(np.clip(rng.normal(0.0, 2.5), -6.0, 6.0)))
        center = (width * rng.uniform(0.47, 0.53), height * rng.uniform(0.47, 0.53))
    else:
        angle = math.radians(float(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0)))
        center = (width * rng.uniform(0.45, 0.55), height * rng.uniform(0.46, 0.54))
    press = float(np.clip(0.5 + 0.25 * moisture + rng.normal(0.0, 0.15), 0.0, 1.0))
    contact = draw_contact(
        rng,
        mode,
        master_size=master.size,
        radius=master.cylinder_radius,
        center=center,
        angle=angle,
        quality=quality,
        distortion=distortion,
        pressure=press,
        partial=bool(rng.random() < 0.6 * (1.0 - quality)),
    )
    ink = np.zeros((height, width), dtype=np.float32)
    pressure = np.zeros((height, width), dtype=np.float32)
    window = paint(master, contact, ink, pressure, rng, quality=quality, moisture=moisture)
    image = expose(ink, rng, quality=quality, moisture=moisture, window=window)
    minutiae = project_minutiae(
        master, contact, (width, height), quality=quality, moisture=moisture, pressure=pressure
    )
    return SyntheticImpression(
        image=image,
        minutiae=minutiae,
        mask=pressure > _MASK_PRESSURE,
        contact=contact,
        rolled=rolled,
    )


def paint(
    master: MasterFinger,
    contact: Contact,
    ink: np.ndarray,
    pressure: np.ndarray,
    rng: np.random.Generator,
    *,
    quality: float,
    moisture: float,
) -> Window | None:
    """Ink ``contact`` into the canvas arrays ``ink`` and ``pressure`` (keeping the maximum).

    Returns the canvas window that was painted, or None when the contact misses the canvas.
    """
    window = _window(contact, ink.shape)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    part_ink, part_press = ink_window(
        master.ridges, master.skin, contact, window, rng, quality=quality, moisture=moisture
    )
    np.maximum(ink[y0:y1, x0:x1], part_ink, out=ink[y0:y1, x0:x1])
    np.maximum(pressure[y0:y1, x0:x1], part_press, out=pressure[y0:y1, x0:x1])
    return window


def project_minutiae(
    master: MasterFinger,
    contact: Contact,
    canvas: tuple[int, int],
    *,
    quality: float = 1.0,
    moisture: float = 0.0,
    pressure: np.ndarray | None = None,
    origin: tuple[int, int] = (0, 0),
) -> list[Minutia]:
    """The master's true minutiae where ``contact`` puts them on a (width, height) canvas.

    Minutiae off the canvas or where the contact is too light to print are dropped; a direction
    is carried by mapping a short step along it. Quality falls towards the contact's rim.
    ``pressure`` is the contact pressure as rendered (its pixel [0, 0] at canvas ``origin``);
    without it the pressure is worked out again from the contact.
    """
    truth = master.true_minutiae
    if not truth:
        return []
    mx = np.array([m.x for m in truth])
    my = np.array([m.y for m in truth])
    angle = np.array([m.angle for m in truth])
    qx, qy = contact.from_master(mx, my)
    step = 3.0
    ax, ay = contact.from_master(mx + step * np.cos(angle), my - step * np.sin(angle))
    new_angle = np.arctan2(-(ay - qy), ax - qx) % (2 * math.pi)
    with np.errstate(invalid="ignore"):
        bx, by, press = contact.trace(qx, qy)
        if pressure is None:
            press = press * bilinear(master.skin, bx, by, 0.0)
        else:
            press = _pixels(pressure, qx - origin[0], qy - origin[1])
        round_trip = np.hypot(bx - mx, by - my)
        width, height = canvas
        keep = (
            np.isfinite(qx)
            & np.isfinite(qy)
            & (qx >= 0)
            & (qx <= width - 1)
            & (qy >= 0)
            & (qy <= height - 1)
            & (press >= _KEEP_PRESSURE)
            & (round_trip < 1.0)
        )
    clarity = (1.0 - 0.3 * abs(moisture)) * (0.6 + 0.4 * quality)
    out = []
    for i in np.nonzero(keep)[0]:
        q = int(np.clip(round(100 * min(1.0, press[i] / 0.8) * clarity), 1, 100))
        out.append(
            Minutia(
                x=float(qx[i]),
                y=float(qy[i]),
                angle=float(new_angle[i]),
                kind=truth[i].kind,
                quality=q,
            )
        )
    return out


def rolled_sequence(
    master: MasterFinger,
    rng: np.random.Generator,
    frames: int = 24,
    *,
    size: tuple[int, int] | None = None,
    quality: float = 1.0,
    moisture: float = 0.0,
) -> Iterator[np.ndarray]:
    """Frames (uint8) of ``master`` rolling across the platen from one nail edge to the other.

    Each frame shows only the strip of skin touching the glass at that moment, where the finished
    roll would put it; the stitched result is what ``master.impression(rng, rolled=True)`` gives.
    """
    if frames < 1:
        raise ValueError("a roll needs at least one frame")
    quality = float(np.clip(quality, 0.0, 1.0))
    moisture = float(np.clip(moisture, -1.0, 1.0))
    width, height = size or ROLLED_SIZE
    base = draw_contact(
        rng,
        ContactMode.ROLLED,
        master_size=master.size,
        radius=master.cylinder_radius,
        center=(width * rng.uniform(0.47, 0.53), height * rng.uniform(0.47, 0.53)),
        angle=math.radians(float(np.clip(rng.normal(0.0, 2.5), -6.0, 6.0))),
        quality=quality,
    )
    half_angle = math.radians(rng.uniform(48.0, 58.0))
    lo, hi = base.roll_limits
    start, end = -lo + 0.6 * half_angle, hi - 0.6 * half_angle
    if rng.random() < 0.5:
        start, end = end, start
    exposure = draw_exposure(rng, (height, width), quality=quality, moisture=moisture)
    for i in range(frames):
        t = 0.5 if frames == 1 else i / (frames - 1)
        t = t * t * (3.0 - 2.0 * t)  # the roll starts and ends slowly
        contact = dataclasses.replace(
            base,
            mode=ContactMode.ROLLING,
            roll=start + (end - start) * t,
            half_width=master.cylinder_radius * math.sin(half_angle),
            half_height=0.45 * master.size[1],
            exponent=2.4,
        )
        ink = np.zeros((height, width), dtype=np.float32)
        pressure = np.zeros((height, width), dtype=np.float32)
        window = paint(master, contact, ink, pressure, rng, quality=quality, moisture=moisture)
        yield exposure.apply(ink, rng, window)


def _pixels(a: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Nearest pixels of ``a`` at (x, y); 0 outside or where x, y are not finite."""
    out = np.zeros(len(x), dtype=np.float32)
    ok = np.isfinite(x) & np.isfinite(y)
    c = np.rint(np.where(ok, x, -1)).astype(int)
    r = np.rint(np.where(ok, y, -1)).astype(int)
    ok &= (r >= 0) & (r < a.shape[0]) & (c >= 0) & (c < a.shape[1])
    out[ok] = a[r[ok], c[ok]]
    return out


def _window(contact: Contact, shape: tuple[int, ...]) -> Window | None:
    """The part of a canvas of ``shape`` (rows, cols) that can hold the contact."""
    x0, y0, x1, y1 = contact.bounds()
    h, w = shape[0], shape[1]
    ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    ix1, iy1 = min(w, int(math.ceil(x1)) + 1), min(h, int(math.ceil(y1)) + 1)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return ix0, iy0, ix1, iy1
