"""Master fingers: the whole ridge pattern of one synthetic finger and its true minutiae.

A master is the skin of the last finger joint laid flat, nail edge to nail edge, at 500 ppi: a
rolled impression sees almost all of it, a flat one the middle half. It is drawn once from a seed
(the same seed always gives the same finger) and every impression of that finger is rendered from
it, so their minutiae are known exactly.

Minutiae follow ISO/IEC 19794-2 (6.4 and 6.5), the convention of :class:`appliance.domain.Minutia`:

* a bifurcation sits on the fork of the ridge skeleton; its direction runs along the valley
  between the two branches, away from the stem;
* a ridge ending sits where the valley skeleton forks around the ridge end, just beyond the tip
  of the ridge; its direction runs along the ridge, from the end into the ridge body.

Angles are radians counter-clockwise from +x as seen on screen (rows grow downwards).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from appliance.domain import Minutia, MinutiaType, Position
from drivers.synthetic.impression import MASTER_SIZE as DEFAULT_SIZE
from drivers.synthetic.impression import SyntheticImpression, render
from drivers.synthetic.orientation import FingerClass, OrientationModel, random_model
from drivers.synthetic.ridges import PERIOD_RANGE, grow_ridges, period_map
from drivers.synthetic.skeleton import SkeletonMinutia, skeleton_minutiae, thin

PPI = 500

#: Pattern class frequencies of the general population (loops about 65 %, whorls 30 %).
CLASS_FREQUENCIES = {
    FingerClass.LEFT_LOOP: 0.325,
    FingerClass.RIGHT_LOOP: 0.325,
    FingerClass.WHORL: 0.30,
    FingerClass.ARCH: 0.025,
    FingerClass.TENTED_ARCH: 0.025,
}

_BORDER_PERIODS = 1.3  # minutiae closer than this many ridge periods to the skin's edge are dropped
_SNAP_DEGREES = 25.0


@dataclass(frozen=True, eq=False)
class MasterFinger:
    """One synthetic finger: its ridge pattern, skin outline and true minutiae.

    ``ridges`` is a float32 map in [-1, 1], positive on ridges, band-limited so that it can be
    resampled smoothly; ``ridge_map`` is its binary form. ``mask`` is the ridged skin. All arrays
    are read-only, so one master can be shared (and cached) between threads.
    """

    seed: int
    finger_class: FingerClass
    ridges: np.ndarray
    mask: np.ndarray
    period: np.ndarray
    orientation: OrientationModel
    true_minutiae: tuple[Minutia, ...]
    position: Position | None = None
    ppi: int = PPI
    _skin: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    @classmethod
    def generate(
        cls,
        seed: int,
        finger_class: FingerClass | None = None,
        size: tuple[int, int] = DEFAULT_SIZE,
        position: Position | None = None,
    ) -> MasterFinger:
        """The master of ``seed`` (see :func:`generate_master`)."""
        return generate_master(seed, finger_class, size, position)

    @property
    def minutiae(self) -> list[Minutia]:
        """The finger's true minutiae in master pixels (a fresh list; the master is shared)."""
        return list(self.true_minutiae)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.ridges.shape[1], self.ridges.shape[0]

    @property
    def ridge_map(self) -> np.ndarray:
        """Binary ridge pattern (True on ridges), over the whole master rectangle."""
        return self.ridges > 0

    @property
    def skin(self) -> np.ndarray:
        """Soft skin outline in [0, 1] (1 well inside the skin), float32."""
        return self._skin

    @property
    def cylinder_radius(self) -> float:
        """Radius of the finger in pixels: the master's width is half its circumference."""
        return self.ridges.shape[1] / math.pi

    def impression(
        self,
        rng: np.random.Generator,
        *,
        rolled: bool = False,
        quality: float = 1.0,
        moisture: float = 0.0,
        size: tuple[int, int] | None = None,
        distortion: float = 1.0,
    ) -> SyntheticImpression:
        """One impression of this finger: see :func:`drivers.synthetic.impression.render`."""
        return render(
            self,
            rng,
            rolled=rolled,
            quality=quality,
            moisture=moisture,
            size=size,
            distortion=distortion,
        )

    def __repr__(self) -> str:
        w, h = self.size
        return (
            f"MasterFinger(seed={self.seed}, class={self.finger_class.value}, size={w}x{h}, "
            f"minutiae={len(self.true_minutiae)})"
        )


def draw_class(rng: np.random.Generator) -> FingerClass:
    """A pattern class drawn with :data:`CLASS_FREQUENCIES`."""
    classes = list(CLASS_FREQUENCIES)
    p = np.array([CLASS_FREQUENCIES[c] for c in classes])
    return classes[int(rng.choice(len(classes), p=p / p.sum()))]


#: Two hands' worth: the emulator's subject being booked and the next one it draws ahead, so a
#: process that starts over with the same subjects (a restarted demo, a test suite) finds them.
MASTERS_KEPT = 20


@functools.lru_cache(maxsize=MASTERS_KEPT)
def generate_master(
    seed: int,
    finger_class: FingerClass | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    position: Position | None = None,
) -> MasterFinger:
    """Draw the master finger of ``seed``: same arguments, same finger (results are cached).

    ``size`` is (width, height) in pixels; without ``finger_class`` the class is drawn from
    :data:`CLASS_FREQUENCIES`.
    """
    width, height = int(size[0]), int(size[1])
    if width < 128 or height < 128:
        raise ValueError(f"master size {width}x{height} is too small for a finger")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % (1 << 64), 0x5F1]))
    if finger_class is None:
        finger_class = draw_class(rng)
    finger_class = FingerClass(finger_class)
    model = random_model(rng, finger_class, width, height)
    period = period_map(rng, (height, width), rng.uniform(8.8, 9.8))
    ridges = grow_ridges(model, period, rng)
    mask = skin_outline(width, height, rng)
    skin = _soft(mask, radius=5)
    minutiae = true_minutiae(ridges, mask, period, model)
    for a in (ridges, mask, period, skin):
        a.setflags(write=False)
    return MasterFinger(
        seed=int(seed),
        finger_class=finger_class,
        ridges=ridges,
        mask=mask,
        period=period,
        orientation=model,
        true_minutiae=tuple(minutiae),
        position=position,
        _skin=skin,
    )


def skin_outline(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The ridged skin of the last joint: a rounded fingertip on top, the crease below."""
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    cx = 0.5 * width
    half = 0.49 * width
    top = height * rng.uniform(0.01, 0.03)
    shoulder = top + half * rng.uniform(0.85, 1.05)
    p = rng.uniform(2.0, 2.6)
    above = np.clip((shoulder - y) / (shoulder - top), 0.0, 1.0)
    taper = 1.0 - 0.08 * np.clip((y - shoulder) / (height - shoulder), 0.0, 1.0)
    half_width = half * taper * np.power(np.clip(1.0 - above**p, 0.0, 1.0), 1.0 / p)
    bottom = height * rng.uniform(0.95, 0.98) - 0.02 * height * ((x - cx) / half) ** 2
    return (np.abs(x - cx) <= half_width) & (y >= top) & (y <= bottom)


def true_minutiae(
    ridges: np.ndarray, mask: np.ndarray, period: np.ndarray, model: OrientationModel
) -> list[Minutia]:
    """ISO-placed minutiae of a ridge field, inside ``mask`` away from its edge.

    Endings and forks come from the ridge skeleton; each ending then moves to the fork of the
    valley skeleton just beyond it (its ISO location), or half a period beyond the ridge end
    when the valley fork is not found. Directions snap to the model's orientation when the
    walked skeleton agrees with it to within 25 degrees.
    """
    binary = ridges > 0
    inner = _erode(mask, int(round(_BORDER_PERIODS * float(np.mean(PERIOD_RANGE)))))
    ridge_found = skeleton_minutiae(thin(binary), region=inner)
    # the valley skeleton is only needed around ridge endings
    h, w = mask.shape
    near_ends = np.zeros_like(mask)
    reach = int(PERIOD_RANGE[1])
    for m in ridge_found:
        if m.kind == "E":
            r, c = int(m.y), int(m.x)
            near_ends[max(0, r - reach) : r + reach + 1, max(0, c - reach) : c + reach + 1] = True
    valley_forks = [m for m in skeleton_minutiae(thin(~binary), region=near_ends) if m.kind == "B"]
    vf = np.array([(m.x, m.y) for m in valley_forks], dtype=np.float64).reshape(-1, 2)
    out: list[Minutia] = []
    for m in ridge_found:
        p = float(period[int(m.y), int(m.x)])
        x, y = float(m.x), float(m.y)
        if m.kind == "E":
            x, y = _valley_fork(m, vf, p)
            if not (0 <= x < w and 0 <= y < h and inner[int(y), int(x)]):
                continue
        angle = _snap(m, model)
        kind = MinutiaType.ENDING if m.kind == "E" else MinutiaType.BIFURCATION
        out.append(Minutia(x=x, y=y, angle=angle % (2 * math.pi), kind=kind, quality=100))
    return _drop_crowded(out, 0.45 * float(np.mean(PERIOD_RANGE)))


def _valley_fork(m: SkeletonMinutia, forks: np.ndarray, period: float) -> tuple[float, float]:
    """Location of the valley fork just beyond ridge ending ``m``."""
    back = np.array([-math.cos(m.angle), math.sin(m.angle)])  # (dx, drow) beyond the tip
    if len(forks):
        d = forks - np.array([m.x, m.y])
        dist = np.hypot(d[:, 0], d[:, 1])
        ahead = d @ back
        ok = (dist < 0.8 * period) & (ahead > 0.3 * dist)
        if ok.any():
            i = int(np.argmin(np.where(ok, dist, np.inf)))
            return float(forks[i, 0]), float(forks[i, 1])
    return float(m.x + 0.5 * period * back[0]), float(m.y + 0.5 * period * back[1])


def _snap(m: SkeletonMinutia, model: OrientationModel) -> float:
    """The walked direction, snapped onto the model orientation when they agree."""
    theta = float(model.angle(np.array(m.x), np.array(m.y)))
    for candidate in (theta, theta + math.pi):
        diff = (candidate - m.angle + math.pi) % (2 * math.pi) - math.pi
        if abs(diff) <= math.radians(_SNAP_DEGREES):
            return candidate
    return m.angle


def _drop_crowded(minutiae: list[Minutia], distance: float) -> list[Minutia]:
    """Drop both members of every pair closer than ``distance`` (spurs, dots, tiny lakes)."""
    if len(minutiae) < 2:
        return minutiae
    xy = np.array([(m.x, m.y) for m in minutiae])
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    keep = d.min(axis=1) >= distance
    return [m for m, k in zip(minutiae, keep, strict=True) if k]


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``mask`` at least ``radius`` pixels (box distance) inside it."""
    return _box_mean(mask.astype(np.float32), radius) > 0.999


def _soft(mask: np.ndarray, radius: int) -> np.ndarray:
    """A mask with edges smoothed over about ``radius`` pixels, float32 in [0, 1]."""
    return _box_mean(mask.astype(np.float32), radius)


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box; outside the array counts as 0."""
    k = 2 * radius + 1
    p = np.pad(a.astype(np.float64), radius + 1)
    c = p.cumsum(0).cumsum(1)
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s[: a.shape[0], : a.shape[1]] / (k * k)).astype(np.float32)
