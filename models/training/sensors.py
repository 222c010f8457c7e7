"""Training prints as other kinds of sensor would have captured them.

FVC2002 gives the trainer four sensors; a station meets others (sweep sensors, small
capacitive windows, 400 or 1000 ppi scanners, images that went through JPEG). With
``--sensors P`` each training crop's print first passes, with probability P, through one of
these imitations of capture physics, so the network meets them without their data:

* ``resolution``: captured at 400..1000 ppi (the print shrunk or enlarged to it, with that
  sensor's blur or aliasing), then resampled to 500 ppi as the runtime does;
* ``sweep``: a swipe sensor's stitched image: the finger moved at an uneven speed (rows
  stretched and squeezed, 0.8..1.25) and sideways (each row shifted by a smooth drift of up to
  6 px);
* ``jpeg``: stored as JPEG at quality 25..85 on the way (blocks and ringing);
* ``banding``: a capacitive array's fixed-pattern noise (column and row gain and offset) and a
  lower contrast.

Each returns the image and its labels: the geometric ones move every label with its pixels
(position and direction), the others leave the labels as they were. At P = 0 no random number
is drawn, so the default recipe's crops stay exactly those of the shipped model's run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from appliance.imaging.resample import resample

Imitation = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def resolution(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
               ppi: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As captured at ``ppi`` (drawn in 400..1000) and resampled back to 500 ppi."""
    ppi = float(rng.uniform(400.0, 1000.0)) if ppi is None else ppi
    h, w = image.shape
    captured = resample(image, 500.0, ppi)
    back = resample(captured, ppi, 500.0)
    out = labels.copy()
    out[:, 0] = (out[:, 0] + 0.5) * back.shape[1] / w - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * back.shape[0] / h - 0.5
    return np.ascontiguousarray(back), out


def _smooth(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """A smooth random curve over ``n`` rows in [-1, 1] (cosine-interpolated knots)."""
    values = rng.uniform(-1.0, 1.0, knots + 1)
    pos = np.linspace(0.0, knots, n)
    i = np.minimum(pos.astype(int), knots - 1)
    t = (1.0 - np.cos(math.pi * (pos - i))) / 2.0
    return values[i] * (1.0 - t) + values[i + 1] * t


def sweep(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
          speed: tuple[float, float] = (0.8, 1.25), drift_px: float = 6.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """As a swipe sensor stitches it: output row v shows source row Y(v), shifted by D(v).

    Y advances by a smooth speed in ``speed`` per output row; D is a smooth sideways drift of
    up to ``drift_px``. A minutia at source (x, y) lands at v = Y^-1(y), u = x + D(v); its
    direction follows the local stretch (rows 1 / Y') and shear (D').
    """
    h, w = image.shape
    lo, hi = speed
    rates = lo + (hi - lo) * (_smooth(rng, 4 * h, 6) + 1.0) / 2.0  # source rows per output row
    ys = np.concatenate([[0.0], np.cumsum(rates)])
    rows = int(np.searchsorted(ys, h - 1.0))  # output rows that stay on the print
    ys, rates = ys[:rows], rates[:rows]
    drift = drift_px * _smooth(rng, rows, 4)
    src = image.astype(np.float32)
    y0 = np.floor(ys).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    fy = (ys - y0)[:, None].astype(np.float32)
    stitched = src[y0] * (1.0 - fy) + src[y1] * fy
    xs = np.arange(w, dtype=np.float32)
    out = np.empty_like(stitched)
    for v in range(rows):  # each row shifted sideways, with the background beyond the edge
        out[v] = np.interp(xs - drift[v], xs, stitched[v], left=stitched[v, 0],
                           right=stitched[v, -1])
    moved = labels.copy()
    v = np.interp(labels[:, 1], ys, np.arange(rows, dtype=np.float64))
    slope = np.gradient(drift) if rows > 1 else np.zeros(rows)
    d = np.interp(v, np.arange(rows), drift)
    rate = np.interp(v, np.arange(rows), rates)
    shear = np.interp(v, np.arange(rows), slope)
    moved[:, 0] = labels[:, 0] + d
    moved[:, 1] = v
    # direction: (dx, drow) in source pixels -> (dx + shear * drow / rate, drow / rate)
    dx, drow = np.cos(labels[:, 2]), -np.sin(labels[:, 2])
    dv = drow / rate
    du = dx + shear * dv
    moved[:, 2] = np.arctan2(-dv, du) % (2 * math.pi)
    inside = labels[:, 1] <= ys[-1]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), moved[inside]


def jpeg(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
         quality: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As stored as JPEG at ``quality`` (drawn in 25..85) on the way."""
    quality = int(rng.integers(25, 86)) if quality is None else quality
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L")), labels.copy()


def banding(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """A capacitive array's look: per-column and per-row gain and offset, contrast lowered."""
    h, w = image.shape
    contrast = float(rng.uniform(0.35, 0.9))
    gain = (1.0 + rng.normal(0.0, 0.06, w))[None, :] * (1.0 + rng.normal(0.0, 0.03, h))[:, None]
    offset = rng.normal(0.0, 6.0, w)[None, :] + rng.normal(0.0, 3.0, h)[:, None]
    grey = image.astype(np.float32)
    mean = float(grey.mean())
    out = (mean + (grey - mean) * contrast) * gain + offset
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), labels.copy()


#: The imitations ``--sensors`` draws from, each equally often.
IMITATIONS: dict[str, Imitation] = {
    "resolution": resolution,
    "sweep": sweep,
    "jpeg": jpeg,
    "banding": banding,
}


def imitate(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``labels`` through one imitation drawn at random."""
    names = list(IMITATIONS)
    return IMITATIONS[names[int(rng.integers(len(names)))]](image, labels, rng)
