"""Slaps: four fingers (or two thumbs) pressed flat together on a large platen.

A hand put down on the glass fans its fingers: the outer fingers lean outwards, the middle finger
reaches highest, index and ring a little lower and the little finger, smaller, lowest. Two thumbs
stand side by side, leaning slightly inwards. Each finger is a flat contact of its own master,
placed so no two touch, and the whole platen is exposed at once. The result keeps, per finger,
its rotated box (the segmentation truth) and its minutiae in platen pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from appliance.domain import FingerBox, Minutia, Position
from drivers.synthetic.contact import Contact, ContactMode, draw_contact
from drivers.synthetic.impression import project_minutiae
from drivers.synthetic.inking import expose, ink_window
from drivers.synthetic.master import MasterFinger

#: Platen (width, height) of a ten-print livescan: 3.2 x 3.0 in at 500 ppi.
PLATEN_SIZE = (1600, 1500)
_MASK_PRESSURE = 0.12
_GAP = 24.0  # least clearance between two fingers' contact boxes, pixels




@dataclass(frozen=True, eq=False)
class SyntheticSlap:
    """One slap image with its per-finger truth, fingers in platen order (left to right)."""

    image: np.ndarray = field(repr=False)
    boxes: list[FingerBox]
    minutiae: list[list[Minutia]] = field(repr=False)
    labels: np.ndarray = field(repr=False)  # uint8: 0 off the fingers, i + 1 on finger i
    positions: list[Position | None]
    ppi: int = 500


def slap(
    fingers: list[MasterFinger],
    rng: np.random.Generator,
    *,
    platen: tuple[int, int] = PLATEN_SIZE,
    thumbs: bool = False,
    quality: float = 1.0,
    moisture: float = 0.0,
    distortion: float = 1.0,
) -> SyntheticSlap:
    """Press ``fingers`` (in image order, left to right) together on a ``platen`` (width, height).

    Four-finger slaps take one to four fingers (fewer where a finger is missing); the little
    finger is told by its position when known, else as the smaller outer finger. With
    ``thumbs`` the two thumbs are placed side by side.
    """
    count = len(fingers)
    if thumbs and not 1 <= count <= 2:
        raise ValueError("a thumb slap takes one or two thumbs")
    if not thumbs and not 1 <= count <= 4:
        raise ValueError("a four-finger slap takes one to four fingers")
    quality = float(np.clip(quality, 0.0, 1.0))
    moisture = float(np.clip(moisture, -1.0, 1.0))
    width, height = platen
    angles, drops = _pose(fingers, rng, thumbs)
    contacts = [
        draw_contact(
            rng,
            ContactMode.FLAT,
            master_size=f.size,
            radius=f.cylinder_radius,
            center=(0.0, 0.0),
            angle=math.radians(a),
            quality=quality,
            distortion=distortion,
            pressure=float(np.clip(0.55 + 0.25 * moisture + rng.normal(0.0, 0.12), 0.0, 1.0)),
        )
        for f, a in zip(fingers, angles, strict=True)
    ]
    contacts = _layout(contacts, drops, rng, width, height)

    ink = np.zeros((height, width), dtype=np.float32)
    best = np.zeros((height, width), dtype=np.float32)
    labels = np.zeros((height, width), dtype=np.uint8)
    boxes: list[FingerBox] = []
    minutiae: list[list[Minutia]] = []
    for i, (finger, contact) in enumerate(zip(fingers, contacts, strict=True)):
        window = _clip_window(contact.bounds(), width, height)
        if window is None:
            boxes.append(FingerBox(contact.center[0], contact.center[1], 0.0, 0.0, 0.0))
            minutiae.append([])
            continue
        x0, y0, x1, y1 = window
        part_ink, part_press = ink_window(
            finger.ridges, finger.skin, contact, window, rng, quality=quality, moisture=moisture
        )
        np.maximum(ink[y0:y1, x0:x1], part_ink, out=ink[y0:y1, x0:x1])
        mine = (part_press > _MASK_PRESSURE) & (part_press >= best[y0:y1, x0:x1])
        labels[y0:y1, x0:x1][mine] = i + 1
        np.maximum(best[y0:y1, x0:x1], part_press, out=best[y0:y1, x0:x1])
        boxes.append(_box(labels[y0:y1, x0:x1] == i + 1, x0, y0, contact))
        minutiae.append(
            project_minutiae(
                finger,
                contact,
                platen,
                quality=quality,
                moisture=moisture,
                pressure=np.where(mine, part_press, 0.0),
                origin=(x0, y0),
            )
        )
    painted = [_clip_window(c.bounds(), width, height) for c in contacts]
    union = [w for w in painted if w is not None]
    window = (
        (
            min(w[0] for w in union),
            min(w[1] for w in union),
            max(w[2] for w in union),
            max(w[3] for w in union),
        )
        if union
        else (0, 0, 0, 0)
    )
    image = expose(ink, rng, quality=quality, moisture=moisture, window=window)
    return SyntheticSlap(
        image=image,
        boxes=boxes,
        minutiae=minutiae,
        labels=labels,
        positions=[f.position for f in fingers],
    )


def _pose(
    fingers: list[MasterFinger], rng: np.random.Generator, thumbs: bool
) -> tuple[list[float], list[float]]:
    """Each finger's lean (degrees, counter-clockwise) and how far its tip sits below the top."""
    n = len(fingers)
    if thumbs:
        lean = [-6.0, 6.0] if n == 2 else [0.0]
        angles = [a + rng.normal(0.0, 3.0) for a in lean]
        drops = [abs(rng.normal(0.0, 30.0)) for _ in range(n)]
        return angles, drops
    slots, little_right = _slots(fingers)
    # per slot (index, middle, ring, little) on a right hand: lean, and tip drop below the middle
    fan = (9.0, 2.0, -5.0, -14.0)
    drop = (55.0, 0.0, 45.0, 190.0)
    turn = rng.normal(0.0, 3.0)
    side = 1.0 if little_right else -1.0
    angles = [turn + side * fan[k] + rng.normal(0.0, 2.5) for k in slots]
    drops = [max(0.0, drop[k] + rng.normal(0.0, 20.0)) for k in slots]
    return angles, drops


_SLOT = {2: 0, 3: 1, 4: 2, 5: 3, 7: 0, 8: 1, 9: 2, 10: 3}  # position -> index..little


def _slots(fingers: list[MasterFinger]) -> tuple[list[int], bool]:
    """Which finger each one is, and whether the little finger is on the right of the image.

    Fingers are numbered index 0, middle 1, ring 2, little 3; a right hand has its little
    finger on the right.
    """
    known = [_SLOT.get(int(f.position)) if f.position is not None else None for f in fingers]
    if len(fingers) > 1 and all(k is not None for k in known):
        slots = [int(k) for k in known if k is not None]
        return slots, slots[-1] > slots[0]
    n = len(fingers)
    little_right = fingers[-1].size[0] <= fingers[0].size[0]
    slots = list(range(4 - n, 4))
    return (slots if little_right else slots[::-1]), little_right


def _layout(
    contacts: list[Contact],
    drops: list[float],
    rng: np.random.Generator,
    width: int,
    height: int,
) -> list[Contact]:
    """Place the contacts side by side without touching, tips at their drops, on the platen."""
    placed: list[Contact] = []
    x = 0.0
    for contact, drop in zip(contacts, drops, strict=True):
        y = drop + contact.half_height
        if placed:
            x = placed[-1].center[0] + 0.5 * (placed[-1].half_width + contact.half_width)
            while _touch(placed[-1], _moved(contact, (x, y))):
                x += 4.0
            x += rng.uniform(0.0, 30.0)
        placed.append(_moved(contact, (x, y)))
    boxes = [c.bounds(margin=8.0) for c in placed]
    x0 = min(b[0] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y0 = min(b[1] for b in boxes)
    y1 = max(b[3] for b in boxes)
    # hands too big for the platen are centred and cut at both sides, as on a real scanner
    slack_x = width - (x1 - x0)
    slack_y = height - (y1 - y0)
    dx = -x0 + (slack_x * rng.uniform(0.35, 0.65) if slack_x > 0 else slack_x / 2)
    dy = -y0 + (slack_y * rng.uniform(0.1, 0.35) if slack_y > 0 else slack_y / 2)
    return [_moved(c, (c.center[0] + dx, c.center[1] + dy)) for c in placed]


def _moved(contact: Contact, center: tuple[float, float]) -> Contact:
    return replace(contact, center=(float(center[0]), float(center[1])))


def _touch(a: Contact, b: Contact) -> bool:
    """Whether two contacts' boxes (grown by the gap) overlap: separating-axis test."""
    pa, pb = _rect(a, _GAP / 2), _rect(b, _GAP / 2)
    for poly in (pa, pb):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            ra, rb = pa @ axis, pb @ axis
            if ra.max() < rb.min() or rb.max() < ra.min():
                return False
    return True


def _rect(contact: Contact, grow: float) -> np.ndarray:
    hw, hh = contact.half_width + grow, contact.half_height + grow
    u = np.array([-hw, hw, hw, -hw])
    v = np.array([-hh, -hh, hh, hh])
    x, y = contact.from_frame(u, v)
    return np.stack([x, y], axis=1)


def _clip_window(
    bounds: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = bounds
    ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    ix1, iy1 = min(width, int(math.ceil(x1)) + 1), min(height, int(math.ceil(y1)) + 1)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return ix0, iy0, ix1, iy1


def _box(mask: np.ndarray, x0: int, y0: int, contact: Contact) -> FingerBox:
    """The rotated box, at the finger's own angle, around its pixels in ``mask``."""
    rows, cols = np.nonzero(mask)
    angle = math.degrees(contact.angle)
    if len(rows) == 0:
        return FingerBox(contact.center[0], contact.center[1], 0.0, 0.0, angle)
    u, v = contact.to_frame(cols + x0, rows + y0)
    u0, u1, v0, v1 = u.min(), u.max() + 1, v.min(), v.max() + 1
    cx, cy = contact.from_frame(np.array(0.5 * (u0 + u1)), np.array(0.5 * (v0 + v1)))
    return FingerBox(float(cx), float(cy), float(u1 - u0), float(v1 - v0), angle)
