"""Inking and exposure: from a finger's contact to the grey levels a livescan reports.

Inking decides which skin touches the glass. A ridge prints where the master's ridge field rises
above a threshold; the threshold drops under pressure and moisture (wet fingers print fat ridges
and fill the valleys) and rises at the rim of the contact and on dry skin, where grainy noise
breaks ridges into dashes and dots. Exposure turns ink into an 8-bit image as an optical scanner
would: a light, unevenly lit background, dark ridges, a little optical blur and sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.synthetic.contact import Contact
from drivers.synthetic.ridges import smooth_noise

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 on the canvas, end exclusive


def bilinear(a: np.ndarray, x: np.ndarray, y: np.ndarray, fill: float) -> np.ndarray:
    """Sample ``a`` at fractional (x, y); ``fill`` outside. float32."""
    return _Sampler(a.shape, x, y).bilinear(a, fill)


class _Sampler:
    """Gather positions and weights for sampling arrays of one shape at the same points."""

    def __init__(self, shape: tuple[int, ...], x: np.ndarray, y: np.ndarray) -> None:
        h, w = shape[0], shape[1]
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        x0 = np.floor(x)
        y0 = np.floor(y)
        self.fx = x - x0
        self.fy = y - y0
        self.valid = (x0 >= 0) & (x0 < w - 1) & (y0 >= 0) & (y0 < h - 1)
        self.w = w
        rows = np.clip(y0, 0, h - 2).astype(np.int32)
        self.index = rows * np.int32(w) + np.clip(x0, 0, w - 2).astype(np.int32)

    def bilinear(self, a: np.ndarray, fill: float) -> np.ndarray:
        flat = np.asarray(a, dtype=np.float32).ravel()
        i, w = self.index, self.w
        v00 = flat[i]
        v01 = flat[i + 1]
        top = v00 + self.fx * (v01 - v00)
        v10 = flat[i + w]
        bottom = v10 + self.fx * (flat[i + w + 1] - v10)
        out = top + self.fy * (bottom - top)
        return np.where(self.valid, out, np.float32(fill))

    def nearest(self, a: np.ndarray, fill: float) -> np.ndarray:
        flat = np.asarray(a, dtype=np.float32).ravel()
        return np.where(self.valid, flat[self.index], np.float32(fill))


def ink_window(
    ridges: np.ndarray,
    skin: np.ndarray,
    contact: Contact,
    window: Window,
    rng: np.random.Generator,
    *,
    quality: float,
    moisture: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ink (0 none .. 1 full) and contact pressure over ``window`` of the canvas, float32.

    ``ridges`` and ``skin`` are the master's ridge field and soft outline.
    """
    x0, y0, x1, y1 = window
    qx = np.arange(x0, x1, dtype=np.float32)[None, :]
    qy = np.arange(y0, y1, dtype=np.float32)[:, None]
    shape = (len(qy), qx.shape[1])
    blot = smooth_noise(rng, shape, 36.0)
    rim = 0.02 * smooth_noise(rng, shape, 45.0)
    mx, my, press = contact.trace(qx, qy, rim)
    sampler = _Sampler(ridges.shape, mx, my)
    press = (press * sampler.nearest(skin, 0.0)).astype(np.float32)
    ridge = sampler.bilinear(ridges, -1.0)
    dry, wet = max(0.0, -moisture), max(0.0, moisture)
    grain = smooth_noise(rng, shape, 3.0 + 2.0 * dry)
    worn = 1.0 - quality
    threshold = (
        0.05
        + 0.6 * (1.0 - press)
        - 0.45 * wet
        + 0.3 * dry
        + (0.1 + 0.25 * dry + 0.15 * worn) * grain
        + (0.06 + 0.15 * worn) * blot
        + 0.4 * dry * np.maximum(blot, 0.0)
    )
    t = np.clip((ridge - threshold) / 0.35 + 0.5, 0.0, 1.0)
    ink = t * t * (3.0 - 2.0 * t)
    if wet:
        # a wet film floods patches: the valleys print grey to black there
        film = press * np.clip(2.5 * (blot + 0.35 * grain - 1.3 + wet), 0.0, 0.9)
        ink = np.maximum(ink, film)
    depth = np.clip(0.9 + 0.08 * smooth_noise(rng, shape, 80.0) - 0.35 * dry, 0.3, 1.0)
    ink = ink * depth * np.clip(4.0 * press, 0.0, 1.0)
    return ink.astype(np.float32), press


_NOISE_SLACK = 32  # the noise field is this much larger than the image, for random offsets


@dataclass(frozen=True, slots=True)
class Exposure:
    """One scanner's look: its unevenly lit ground, how dark ridges print, its noise.

    Drawn once and applied to many frames (a live roll), it only re-blurs the inked window
    and takes each frame's sensor noise from one field at a random offset.
    """

    ground: np.ndarray
    blurred_ground: np.ndarray
    ridge_level: float
    noise: np.ndarray

    def apply(
        self, ink: np.ndarray, rng: np.random.Generator, window: Window | None = None
    ) -> np.ndarray:
        """The 8-bit image of ``ink`` (zero outside ``window``): dark ridges, blurred, noisy."""
        h, w = ink.shape
        x0, y0, x1, y1 = window if window is not None else (0, 0, w, h)
        x0, y0, x1, y1 = max(0, x0 - 2), max(0, y0 - 2), min(w, x1 + 2), min(h, y1 + 2)
        img = self.blurred_ground.copy()
        if x1 > x0 and y1 > y0:
            # the blur is linear: blur(ground - ink * depth) = blur(ground) - blur(ink * depth)
            depth = self.ground[y0:y1, x0:x1] - np.float32(self.ridge_level)
            img[y0:y1, x0:x1] -= _blur(ink[y0:y1, x0:x1] * depth, edge="constant")
        dy, dx = rng.integers(0, _NOISE_SLACK + 1, 2)
        img += self.noise[dy : dy + h, dx : dx + w]
        img += np.float32(0.5)
        return np.clip(img, 0.0, 255.0, out=img).astype(np.uint8)


def draw_exposure(
    rng: np.random.Generator, shape: tuple[int, int], *, quality: float, moisture: float
) -> Exposure:
    """A scanner look for images of ``shape`` (rows, cols)."""
    h, w = shape
    ground = rng.uniform(236.0, 246.0) + 3.0 * smooth_noise(rng, (h, w), 0.6 * max(h, w))
    ground = ground.astype(np.float32)
    sigma = np.float32(1.5 + 5.0 * (1.0 - quality))
    noise = rng.standard_normal((h + _NOISE_SLACK, w + _NOISE_SLACK), dtype=np.float32)
    return Exposure(
        ground=ground,
        blurred_ground=_blur(ground),
        ridge_level=float(rng.uniform(25.0, 55.0) - 15.0 * max(0.0, moisture)),
        noise=noise * sigma,
    )


def expose(
    ink: np.ndarray,
    rng: np.random.Generator,
    *,
    quality: float,
    moisture: float,
    window: Window | None = None,
) -> np.ndarray:
    """The 8-bit image an optical livescan makes of ``ink``: dark ridges on a light ground."""
    exposure = draw_exposure(rng, ink.shape, quality=quality, moisture=moisture)
    return exposure.apply(ink, rng, window)


def _blur(img: np.ndarray, edge: str = "edge") -> np.ndarray:
    """Binomial [1 2 1]/4 blur along both axes: the scanner optics' point spread."""
    p = np.pad(img, 1, mode=edge)
    rows = 0.25 * p[:-2, :] + 0.5 * p[1:-1, :] + 0.25 * p[2:, :]
    return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
