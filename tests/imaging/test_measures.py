"""The shared image measures: the ridge-texture grid does not depend on how it is batched."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from appliance.imaging import measures


def all_windows_at_once(image: np.ndarray, ppi: float, step: int, window: int):
    """The ridge-texture grid computed over every window in one go (the reference)."""
    views = sliding_window_view(image, (window, window))[::step, ::step]
    gh, gw = views.shape[:2]
    tiles = views.reshape(gh * gw, window, window).astype(np.float32, order="C")
    mean = tiles.mean(axis=(1, 2))
    hann = np.hanning(window).astype(np.float32)
    power = np.abs(np.fft.rfft2((tiles - mean[:, None, None])
                                * (hann[:, None] * hann[None, :]))) ** 2
    fy = np.fft.fftfreq(window)[:, None]
    fx = np.fft.rfftfreq(window)[None, :]
    total = power[:, np.hypot(fx, fy) >= 1.0 / window].sum(axis=1) + 1e-6
    fraction = power[:, measures.ridge_band(ppi, window)].sum(axis=1) / total
    return (fraction.reshape(gh, gw), tiles.std(axis=(1, 2)).reshape(gh, gw),
            mean.reshape(gh, gw))


def print_like(height: int, width: int) -> np.ndarray:
    """Ridges about 9 px apart with a curl, on a light background, with sensor noise."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:height, :width].astype(np.float64)
    phase = 2 * np.pi * (x + 0.3 * y + 0.0004 * (x - width / 2) ** 2) / 9.0
    contact = np.exp(-(((x - width / 2) / (0.35 * width)) ** 2
                       + ((y - height / 2) / (0.4 * height)) ** 2))
    image = 235 - 150 * contact * (0.5 + 0.5 * np.cos(phase)) + rng.normal(0, 4, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("batch_px", [1, 5000, 1 << 19, 1 << 30])
@pytest.mark.parametrize(("shape", "ppi", "step", "window"),
                         [((517, 613), 500, 16, 32), ((750, 800), 250, 8, 16),
                          ((40, 900), 500, 16, 32)])
def test_batched_windows_give_the_same_grid(monkeypatch, batch_px, shape, ppi, step, window):
    image = print_like(*shape)
    monkeypatch.setattr(measures, "TEXTURE_BATCH_PX", batch_px)
    got = measures.ridge_texture(image, ppi, step=step, window=window)
    for field, expected in zip(("band_fraction", "contrast", "mean"),
                               all_windows_at_once(image, ppi, step, window), strict=True):
        value = getattr(got, field)
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, expected.astype(np.float32), err_msg=field)


def test_an_image_smaller_than_a_window_has_an_empty_grid():
    texture = measures.ridge_texture(np.full((20, 40), 200, np.uint8), 500)
    assert texture.band_fraction.shape == texture.contrast.shape == texture.mean.shape == (0, 0)
