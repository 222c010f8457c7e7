"""Bring an image to the resolution an algorithm was built for.

NFIQ 2 and MINDTCT are defined on 500 ppi images; scanners deliver 500, 569 (FVC2002 DB2),
1000 ppi or 125 ppi previews. Resampling is done once, here, with Pillow's filters (Lanczos when
shrinking, bicubic when enlarging) so every caller gets the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: The resolution NFIQ 2 and MINDTCT were designed and trained for.
NATIVE_PPI = 500


def resample(image: np.ndarray, ppi: float, target_ppi: float = NATIVE_PPI) -> np.ndarray:
    """``image`` (uint8, 2-D) scanned at ``ppi``, resampled to ``target_ppi``.

    Returns the input unchanged (not a copy) when the resolutions already agree within 0.5 %.
    """
    if ppi <= 0 or target_ppi <= 0:
        raise ValueError(f"resolutions must be positive, got {ppi} and {target_ppi}")
    scale = float(target_ppi) / float(ppi)
    if abs(scale - 1.0) < 0.005:
        return image
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.LANCZOS if scale < 1.0 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize(size, method))


def as_gray_u8(image: np.ndarray) -> np.ndarray | None:
    """``image`` as a contiguous 2-D uint8 array, or None when it cannot be one.

    Colour images (the NIST reference set is stored R=G=B) are reduced to the mean of their
    colour channels, (h, w, 1) arrays to their one channel; other dtypes are refused, because
    guessing a scale for them would invent a picture.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[:, :, :3]
        if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
            image = rgb[:, :, 0]
        else:
            image = np.round(rgb.mean(axis=2)).astype(np.uint8)
    if image.ndim != 2 or image.size == 0:
        return None
    return np.ascontiguousarray(image)
