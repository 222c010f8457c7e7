"""Measurements the synthetic-print tests take on images, independent of the generator's code."""

from __future__ import annotations

import math

import numpy as np


def fft_period(patch: np.ndarray) -> float:
    """Dominant ridge period (pixels) of a square patch, from the peak of its spectrum."""
    p = patch.astype(np.float64)
    p = p - p.mean()
    n, m = p.shape
    window = np.outer(np.hanning(n), np.hanning(m))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(p * window)))
    cy, cx = n // 2, m // 2
    spectrum[cy - 3 : cy + 4, cx - 3 : cx + 4] = 0.0  # drop the mean and the slowest shading
    r, c = np.unravel_index(int(np.argmax(spectrum)), spectrum.shape)
    frequency = math.hypot((r - cy) / n, (c - cx) / m)
    return 1.0 / frequency


def orientation_estimate(image: np.ndarray, block: int = 8) -> np.ndarray:
    """Block-wise ridge orientation (radians, counter-clockwise on screen, modulo pi) from the
    averaged squared gradients of ``image``; one value per ``block`` x ``block`` tile."""
    a = image.astype(np.float64)
    gy, gx = np.gradient(a)
    gu = -gy  # screen-up component
    rows, cols = a.shape[0] // block, a.shape[1] // block

    def tile_sum(x: np.ndarray) -> np.ndarray:
        x = x[: rows * block, : cols * block]
        return x.reshape(rows, block, cols, block).sum(axis=(1, 3))

    c2 = tile_sum(gx * gx - gu * gu)
    s2 = tile_sum(2 * gx * gu)
    # smooth the doubled-angle vectors over 3 x 3 tiles
    c2 = _box3(c2)
    s2 = _box3(s2)
    return 0.5 * np.arctan2(s2, c2) + math.pi / 2


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    return sum(p[i : i + a.shape[0], j : j + a.shape[1]] for i in range(3) for j in range(3))


def vortex(field: np.ndarray) -> np.ndarray:
    """Spiral-phase (vortex) transform of a ridge field: its quadrature, up to the local
    normal direction (Larkin and Fletcher's demodulation)."""
    spectrum = np.fft.fft2(field - field.mean())
    v = np.fft.fftfreq(field.shape[0])[:, None]
    u = np.fft.fftfreq(field.shape[1])[None, :]
    return np.fft.ifft2(spectrum * np.exp(1j * np.arctan2(v, u)))


def phase_winding(
    field: np.ndarray,
    spiral: np.ndarray,
    orientation,
    x: float,
    y: float,
    radius: float = 6.0,
    samples: int = 40,
) -> int:
    """Turns of the ridge phase round a small circle about (x, y): +-1 around a minutia, 0 in
    plain ridge flow. ``spiral`` is ``vortex(field)``; ``orientation(x, y)`` gives the ridge
    orientation (radians, counter-clockwise on screen)."""
    t = np.linspace(0.0, 2 * math.pi, samples, endpoint=False)
    px, py = x + radius * np.cos(t), y - radius * np.sin(t)
    cols = np.clip(np.rint(px).astype(int), 0, field.shape[1] - 1)
    rows = np.clip(np.rint(py).astype(int), 0, field.shape[0] - 1)
    # direction of the ridge normal in (col, row) terms, kept continuous round the circle
    normal = -(np.asarray(orientation(px, py), dtype=np.float64) + math.pi / 2)
    for i in range(1, samples):
        if abs((normal[i] - normal[i - 1] + math.pi) % (2 * math.pi) - math.pi) > math.pi / 2:
            normal[i:] += math.pi
    quadrature = np.imag(np.exp(-1j * normal) * spiral[rows, cols])
    phase = np.arctan2(quadrature, field[rows, cols])
    turns = np.diff(np.append(phase, phase[0]))
    turns = (turns + math.pi) % (2 * math.pi) - math.pi
    return int(round(turns.sum() / (2 * math.pi)))


def pixel(binary: np.ndarray, x: float, y: float) -> bool:
    """The nearest pixel of ``binary`` at (x, y), False outside."""
    r, c = int(round(y)), int(round(x))
    if 0 <= r < binary.shape[0] and 0 <= c < binary.shape[1]:
        return bool(binary[r, c])
    return False


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``mask`` with the whole (2r+1)^2 box around them inside it."""
    k = 2 * radius + 1
    p = np.pad(mask.astype(np.int32), radius + 1)
    c = p.cumsum(0).cumsum(1)
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s[: mask.shape[0], : mask.shape[1]] == k * k


def angle_difference(a: float, b: float) -> float:
    """Smallest absolute difference between two directions, radians."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)
