"""Ridge growth: a ridge pattern that follows a given orientation and period map.

As in SFinGe (Cappelli, Maio and Maltoni), ridges are grown from a few random seeds by filtering
the image again and again with a Gabor-like filter tuned, at every pixel, to the local ridge
orientation and frequency, and clipping the result. Fronts of parallel ridges spread out from the
seeds; where fronts meet or the flow widens, ridges end or fork: the minutiae arise by themselves.

A per-pixel filter is too slow in numpy, so the filter is *steered*: its angular profile
``cos(phi - psi)^(2n)`` is a short Fourier series in the doubled angle, so the output for any
orientation is a per-pixel weighted sum of ``2n + 1`` fixed filters, each one FFT product.
Frequency is steered the same way between two radial bands. Ridges with a period of 8-11 px are
well sampled at half resolution, so growth runs there and the final, band-limited field is
brought to full resolution by zero-padding its spectrum.
"""

from __future__ import annotations

import math

import numpy as np

from drivers.synthetic.orientation import OrientationModel

#: Ridge period range at 500 ppi, pixels.
PERIOD_RANGE = (8.0, 11.0)
_ANGULAR_ORDER = 3  # n in cos^(2n): angular half-width at half height about 27 degrees
_GAIN = 4.0
_MIN_ITERATIONS = 6
_PLATEAU = 0.004
_MARGIN = 16  # half-resolution pixels around the master, so FFT wrap-around stays outside


def fast_length(n: int) -> int:
    """Smallest 5-smooth integer >= n: a length pocketfft transforms quickly."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-variance noise smooth over about ``scale`` pixels (float32).

    A coarse grid of white noise, one node per ``scale`` pixels, is interpolated with
    Catmull-Rom weights along each axis in turn (four taps; no BLAS, which would spin threads).
    """
    rows, cols = shape
    gr = max(4, int(math.ceil(rows / scale)) + 3)
    gc = max(4, int(math.ceil(cols / scale)) + 3)
    coarse = rng.standard_normal((gr, gc), dtype=np.float32)
    # across the columns first, on the small grid; then down the rows, copying whole rows
    base, w = _catmull_rom(cols, gc)
    wide = sum(w[k][None, :] * coarse[:, base + k - 1] for k in range(4))
    base, w = _catmull_rom(rows, gr)
    out = sum(w[k][:, None] * wide[base + k - 1] for k in range(4))
    out -= out.mean()
    sd = float(out.std())
    return out / sd if sd > 0 else out


def _catmull_rom(n: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Base node and the four Catmull-Rom weights (4, n) for n points spread over the nodes."""
    pos = np.linspace(1.0, nodes - 2.0, n, endpoint=False)
    base = np.floor(pos).astype(np.intp)
    t = pos - base
    w = np.stack(
        [
            0.5 * (-t + 2 * t**2 - t**3),
            0.5 * (2 - 5 * t**2 + 3 * t**3),
            0.5 * (t + 4 * t**2 - 3 * t**3),
            0.5 * (-(t**2) + t**3),
        ]
    ).astype(np.float32)
    return base, w


def period_map(rng: np.random.Generator, shape: tuple[int, int], mean_period: float) -> np.ndarray:
    """Ridge period in pixels at every master pixel: smooth, within :data:`PERIOD_RANGE`.

    Ridges run a little closer near the fingertip and the sides than below the core, as on real
    fingers, plus a gentle random wander.
    """
    rows, cols = shape
    y = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :]
    trend = 0.5 * y - 0.35 * x**2
    wander = 0.35 * smooth_noise(rng, shape, scale=0.45 * max(shape))
    period = mean_period + trend + wander
    lo, hi = PERIOD_RANGE
    return np.clip(period, lo + 0.2, hi - 0.2).astype(np.float32)


def grow_ridges(
    model: OrientationModel,
    period: np.ndarray,
    rng: np.random.Generator,
    *,
    seeds: int | None = None,
    max_iterations: int = 24,
) -> np.ndarray:
    """Grow a ridge pattern over the master plane; returns float32 (rows, cols) in about [-1, 1].

    Positive values are ridges. ``period`` is the full-resolution period map (pixels) and its
    shape is the master's. The result is smooth (band-limited), so its zero level set is a clean
    ridge boundary.
    """
    rows, cols = period.shape
    hr, hc = (rows + 1) // 2 + 2 * _MARGIN, (cols + 1) // 2 + 2 * _MARGIN
    fr, fc = fast_length(hr), fast_length(hc)
    # half-resolution pixel (i, j) covers master pixels around (2(j - M) + 0.5, 2(i - M) + 0.5)
    yy = (2.0 * (np.arange(fr) - _MARGIN) + 0.5)[:, None]
    xx = (2.0 * (np.arange(fc) - _MARGIN) + 0.5)[None, :]
    rot = np.exp(1j * model.doubled_angle(xx, yy))  # e^{2i theta}
    half_period = _sample_half(period, fr, fc)

    # frequency steering: linear blend between two radial bands
    f_lo, f_hi = 2.0 / PERIOD_RANGE[1], 2.0 / PERIOD_RANGE[0]
    blend = np.clip((1.0 / half_period - f_lo) / (f_hi - f_lo), 0.0, 1.0)
    band_weights = (1.0 - blend, blend)

    u = np.fft.fftfreq(fr)[:, None]
    v = np.fft.rfftfreq(fc)[None, :]
    rho = np.hypot(u, v)
    phi = np.arctan2(-u, v)  # counter-clockwise on screen
    sigma = 0.6 * (f_hi - f_lo)
    n = _ANGULAR_ORDER
    coeff = [math.comb(2 * n, n) / 4**n] + [
        (-1) ** k * 2 * math.comb(2 * n, n - k) / 4**n for k in range(1, n + 1)
    ]

    filters: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    rot_k = [np.ones_like(rot)]
    for _ in range(n):
        rot_k.append(rot_k[-1] * rot)
    for f0, bw in zip((f_lo, f_hi), band_weights, strict=True):
        radial = np.exp(-0.5 * ((rho - f0) / sigma) ** 2)
        radial[0, 0] = 0.0
        filters.append((coeff[0] * radial).astype(np.complex64))
        weights.append(bw.astype(np.float32))
        for k in range(1, n + 1):
            filters.append((coeff[k] * radial * np.cos(2 * k * phi)).astype(np.complex64))
            weights.append((bw * rot_k[k].real).astype(np.float32))
            filters.append((coeff[k] * radial * np.sin(2 * k * phi)).astype(np.complex64))
            weights.append((bw * rot_k[k].imag).astype(np.float32))

    image = np.zeros((fr, fc), dtype=np.float32)
    area = (rows // 2) * (cols // 2)
    count = seeds if seeds is not None else max(4, int(area / 900))
    si = rng.integers(_MARGIN, _MARGIN + rows // 2, count)
    sj = rng.integers(_MARGIN, _MARGIN + cols // 2, count)
    image[si, sj] = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), count)

    inside = (slice(_MARGIN, _MARGIN + (rows + 1) // 2), slice(_MARGIN, _MARGIN + (cols + 1) // 2))
    out = image
    filled = 0.0
    for it in range(max_iterations):
        spectrum = np.fft.rfft2(image)
        out = np.zeros_like(image)
        for h, w in zip(filters, weights, strict=True):
            out += w * np.fft.irfft2(spectrum * h, s=(fr, fc))
        out /= max(float(np.abs(out[inside]).max()), 1e-12)
        image = np.clip(_GAIN * out, -1.0, 1.0)
        # stop once the pattern has filled the plane: mean |I| has reached its plateau
        was, filled = filled, float(np.mean(np.abs(image[inside])))
        if it >= _MIN_ITERATIONS and filled - was < _PLATEAU:
            break

    full = _upsample2(out, 2 * fr, 2 * fc)
    m2 = 2 * _MARGIN
    full = full[m2 : m2 + rows, m2 : m2 + cols]
    return _normalise(full)


def _sample_half(a: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Full-resolution map ``a`` sampled on the padded half-resolution grid (edge-clamped)."""
    ii = np.clip(2 * (np.arange(fr) - _MARGIN), 0, a.shape[0] - 1)
    jj = np.clip(2 * (np.arange(fc) - _MARGIN), 0, a.shape[1] - 1)
    return a[np.ix_(ii, jj)] / 2.0


def _upsample2(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Band-limited 2x upsampling by zero-padding the spectrum."""
    r, c = a.shape
    spec = np.fft.rfft2(a)
    big = np.zeros((rows, cols // 2 + 1), dtype=spec.dtype)
    h = r // 2
    big[:h, : spec.shape[1]] = spec[:h]
    big[rows - (r - h) :, : spec.shape[1]] = spec[h:]
    return (np.fft.irfft2(big, s=(rows, cols)) * 4.0).astype(np.float32)


def _normalise(field: np.ndarray) -> np.ndarray:
    """Scale to unit local amplitude so every region inks alike."""
    envelope = _box_mean(np.abs(field), 9)
    return np.clip(field / np.maximum(envelope * 1.6, 1e-6), -1.0, 1.0).astype(np.float32)


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, edges clamped (cumulative sums)."""
    k = 2 * radius + 1
    p = np.pad(a.astype(np.float64), radius + 1, mode="edge")
    c = p.cumsum(0).cumsum(1)
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s[: a.shape[0], : a.shape[1]] / (k * k)).astype(np.float32)
