"""Cheap image measures shared by the live checks, the NFIQ 2 pre-checks and segmentation.

Everything here is numpy on uint8 arrays with dark ridges on a light background: block means and
contrasts (where is skin, how dark, how much contrast), and a ridge-texture map (how much of a
block's energy lies at fingerprint ridge frequencies), which tells a print from text, pen marks,
a black registration dot or sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Ridge period range of adult fingers, in millimetres (about 0.3 .. 0.75 mm; 6 .. 15 px at
#: 500 ppi). The band is kept a little wider so very fine or coarse ridges still count.
RIDGE_PERIOD_MM = (0.28, 0.76)
MM_PER_INCH = 25.4
#: Window pixels :func:`ridge_texture` transforms at a time (2 MB per float32 temporary).
TEXTURE_BATCH_PX = 1 << 19


def block_stats(image: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each ``block`` x ``block`` tile (edges cropped).

    Returns two float32 arrays of shape ``(h // block, w // block)``.
    """
    h, w = image.shape
    gh, gw = h // block, w // block
    if gh == 0 or gw == 0:
        empty = np.zeros((0, 0), dtype=np.float32)
        return empty, empty
    tiles = image[: gh * block, : gw * block].reshape(gh, block, gw, block).astype(np.float32)
    mean = tiles.mean(axis=(1, 3))
    sq = (tiles * tiles).mean(axis=(1, 3))
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean, std


@dataclass(frozen=True, slots=True)
class Foreground:
    """Where skin touches the glass, block by block."""

    mask: np.ndarray  # bool, one cell per block
    block: int  # block size in image pixels
    mean: np.ndarray  # block means (gray levels)
    std: np.ndarray  # block standard deviations

    @property
    def fraction(self) -> float:
        """Share of the image covered by foreground blocks (0..1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def centroid(self) -> tuple[float, float] | None:
        """Foreground centre as fractions (x, y) of the image width and height, or None."""
        if not self.mask.any():
            return None
        ys, xs = np.nonzero(self.mask)
        gh, gw = self.mask.shape
        return float((xs.mean() + 0.5) / gw), float((ys.mean() + 0.5) / gh)


def foreground(image: np.ndarray, block: int, min_std: float = 12.0) -> Foreground:
    """Blocks with ridge contrast (std above ``min_std``) and not blank white.

    ``min_std`` is in gray levels; a clean platen shows std 2..5, ridges 20..70.
    """
    mean, std = block_stats(image, block)
    mask = (std >= min_std) & (mean < 250.0)
    return Foreground(mask=mask, block=block, mean=mean, std=std)


def ridge_band(ppi: float, window: int) -> np.ndarray:
    """Boolean mask over a ``window``-point rfft2 grid: frequencies of fingerprint ridges."""
    px_per_mm = ppi / MM_PER_INCH
    lo_period, hi_period = (p * px_per_mm for p in RIDGE_PERIOD_MM)
    fy = np.fft.fftfreq(window)[:, None]
    fx = np.fft.rfftfreq(window)[None, :]
    r = np.hypot(fx, fy)
    return (r >= 1.0 / hi_period) & (r <= 1.0 / lo_period)


@dataclass(frozen=True, slots=True)
class RidgeTexture:
    """Per-window ridge measures on a regular grid (window centres every ``step`` pixels)."""

    band_fraction: np.ndarray  # share of the window's AC energy at ridge frequencies (0..1)
    contrast: np.ndarray  # window standard deviation (gray levels)
    mean: np.ndarray  # window mean (gray levels)
    step: int
    window: int

    @property
    def score(self) -> np.ndarray:
        """Ridge-likeness 0..1: band fraction weighted by contrast (saturating at std 40)."""
        return self.band_fraction * np.clip(self.contrast / 40.0, 0.0, 1.0)


def ridge_texture(image: np.ndarray, ppi: float, step: int = 16, window: int = 32) -> RidgeTexture:
    """The ridge-texture grid of ``image`` (windows ``window`` px wide, every ``step`` px).

    A Hann-windowed FFT of each window measures how much of its energy lies in the ridge band.
    Prints score 0.6..0.9, paper texture, noise and print text 0.2..0.4.

    The windows overlap (four times the image's pixels at the defaults) and each goes through
    several float32 and complex temporaries, so they are measured a few grid rows at a time
    (:data:`TEXTURE_BATCH_PX`): all at once, an 800x750 print raised the peak resident memory by
    72 MB, in batches by 8 MB (``benchmarks/quality_bench.py``, section texture). Each window is
    measured on its own, so the grid is the same either way.
    """
    h, w = image.shape
    if h < window or w < window:
        empty = np.zeros((0, 0), dtype=np.float32)
        return RidgeTexture(empty, empty, empty, step, window)
    views = sliding_window_view(image, (window, window))[::step, ::step]
    gh, gw = views.shape[:2]
    hann = np.hanning(window).astype(np.float32)
    taper = hann[:, None] * hann[None, :]
    fy = np.fft.fftfreq(window)[:, None]
    fx = np.fft.rfftfreq(window)[None, :]
    ac = np.hypot(fx, fy) >= 1.0 / window  # drop the lowest ring: shading, not ridges
    band = ridge_band(ppi, window)
    fraction = np.empty((gh, gw), dtype=np.float32)
    contrast = np.empty((gh, gw), dtype=np.float32)
    mean = np.empty((gh, gw), dtype=np.float32)
    rows = max(1, TEXTURE_BATCH_PX // (window * window * gw))
    for top in range(0, gh, rows):
        part = views[top : top + rows]
        n = part.shape[0]
        # C order whatever the view's strides: the sums then run as over the whole grid
        tiles = part.reshape(n * gw, window, window).astype(np.float32, order="C")
        tile_mean = tiles.mean(axis=(1, 2))
        centred = (tiles - tile_mean[:, None, None]) * taper
        power = np.abs(np.fft.rfft2(centred)) ** 2
        total = power[:, ac].sum(axis=1) + 1e-6
        fraction[top : top + n] = (power[:, band].sum(axis=1) / total).reshape(n, gw)
        contrast[top : top + n] = tiles.std(axis=(1, 2)).reshape(n, gw)
        mean[top : top + n] = tile_mean.reshape(n, gw)
    return RidgeTexture(
        band_fraction=fraction, contrast=contrast, mean=mean, step=step, window=window
    )


def orientation_coherence(image: np.ndarray, block: int) -> np.ndarray:
    """Per-block ridge orientation coherence 0..1 (structure tensor of the gradients).

    Parallel ridges give values near 1; noise, blotches and isotropic texture give values
    near 0. Returns a float32 array of shape ``(h // block, w // block)``.
    """
    a = image.astype(np.float32)
    gx = np.zeros_like(a)
    gy = np.zeros_like(a)
    gx[:, 1:-1] = a[:, 2:] - a[:, :-2]
    gy[1:-1, :] = a[2:, :] - a[:-2, :]
    h, w = a.shape
    gh, gw = h // block, w // block
    if gh == 0 or gw == 0:
        return np.zeros((0, 0), dtype=np.float32)

    def tile_sum(v: np.ndarray) -> np.ndarray:
        return v[: gh * block, : gw * block].reshape(gh, block, gw, block).sum(axis=(1, 3))

    gxx, gyy, gxy = tile_sum(gx * gx), tile_sum(gy * gy), tile_sum(gx * gy)
    num = np.hypot(gxx - gyy, 2.0 * gxy)
    return (num / (gxx + gyy + 1e-6)).astype(np.float32)
