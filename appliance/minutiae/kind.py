"""Ridge ending or bifurcation, read from the grey levels around an ISO-placed minutia.

ISO/IEC 19794-2 places a bifurcation on the fork of the ridge, its direction running along the
valley between the two branches; a ridge ending in the valley just beyond the ridge's tip, its
direction running into the ridge. So, with dark ridges: a few pixels ahead of a bifurcation is
valley (light) and behind it ridge (dark), and the point itself is dark; ahead of an ending is
ridge (dark), behind it valley (light), and the point itself is light. The station decides the
type from these grey levels: 75 % agree with synthetic ground truth in
``benchmarks/minutiae_eval.py`` (a), as often as LEADER's types; the network's own type output
did no better during development (see the model card), so the rule stays.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

#: How far ahead of and behind the minutia the grey level is read, in pixels at 500 ppi.
REACH_PX = 4.0
_FINE_BLUR = 1.0
_WIDE_BLUR = 6.0


def _at(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape
    col = np.clip(np.round(x), 0, w - 1).astype(np.int64)
    row = np.clip(np.round(y), 0, h - 1).astype(np.int64)
    return image[row, col]


def bifurcation_mask(
    gray: np.ndarray, x: np.ndarray, y: np.ndarray, angle: np.ndarray
) -> np.ndarray:
    """True where the minutia at (x, y) with ISO ``angle`` (radians) looks like a bifurcation.

    ``gray`` is the uint8 print (dark ridges) at 500 ppi; x, y are its pixels.
    """
    if not len(x):
        return np.zeros(0, dtype=bool)
    pil = Image.fromarray(gray)
    fine = np.asarray(pil.filter(ImageFilter.GaussianBlur(_FINE_BLUR)), dtype=np.float32)
    wide = np.asarray(pil.filter(ImageFilter.GaussianBlur(_WIDE_BLUR)), dtype=np.float32)
    ux, uy = np.cos(angle) * REACH_PX, -np.sin(angle) * REACH_PX  # y grows downwards
    ahead = _at(fine, x + ux, y + uy)
    behind = _at(fine, x - ux, y - uy)
    darkness = _at(wide, x, y) - _at(fine, x, y)
    return (ahead - behind) + darkness > 0.0
