"""Labels for real FVC2002 images: the consensus of MINDTCT over several renderings of a print.

A single MINDTCT run keeps many spurious minutiae whose presence depends on tiny changes of
contrast or scale. Running it on six variants of the same image (the original, two gammas, a
light blur, a 5 % up- and a 5 % down-scale, with coordinates mapped back) and keeping only the
minutiae found, within 6 px and 30 degrees, in at least four of the six runs leaves the stable
ones. The label takes the position and direction of the original run (ISO 19794-2 convention:
the binding returns degrees counter-clockwise from +x with y down, which the project checked
against synthetic ground truth) and MINDTCT's type.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

#: Columns of a label array: x, y (pixels), angle (radians), kind (0 ending, 1 bifurcation).
LABEL_COLUMNS = ("x", "y", "angle", "kind")
MATCH_PX = 6.0
MATCH_DEG = 30.0
MIN_VOTES = 4


def _extractor():
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None
    )
    return nbis.new_nbis_extractor(settings)


def mindtct(image: np.ndarray, extractor=None) -> np.ndarray:
    """MINDTCT's minutiae of a 500 ppi uint8 image as an (N, 5) array: x, y, angle, kind, rel."""
    extractor = extractor or _extractor()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    found = extractor.extract_minutiae(buf.getvalue()).get()
    rows = [
        (
            float(m.x()),
            float(m.y()),
            math.radians(m.angle()) % (2 * math.pi),
            0.0 if m.kind().value == 1 else 1.0,
            float(m.reliability()),
        )
        for m in found
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def _variants(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(image, scale) pairs: coordinates found in a variant divided by scale are original ones."""
    pil = Image.fromarray(image)
    h, w = image.shape
    lut_lo = [int(round(255 * (i / 255) ** 0.8)) for i in range(256)]
    lut_hi = [int(round(255 * (i / 255) ** 1.25)) for i in range(256)]
    out = [(image, 1.0)]
    out.append((np.asarray(pil.point(lut_lo)), 1.0))
    out.append((np.asarray(pil.point(lut_hi)), 1.0))
    out.append((np.asarray(pil.filter(ImageFilter.GaussianBlur(0.7))), 1.0))
    for s in (1.05, 0.95):
        size = (round(w * s), round(h * s))
        out.append((np.asarray(pil.resize(size, Image.Resampling.BICUBIC)), s))
    return out


def consensus(image: np.ndarray, extractor=None) -> np.ndarray:
    """Stable MINDTCT minutiae of a 500 ppi image: an (N, 4) array of :data:`LABEL_COLUMNS`."""
    extractor = extractor or _extractor()
    runs = []
    for variant, scale in _variants(image):
        found = mindtct(variant, extractor)
        found[:, :2] /= scale
        runs.append(found)
    base = runs[0]
    votes = np.ones(len(base), dtype=np.int32)
    for other in runs[1:]:
        if not len(other) or not len(base):
            continue
        d = np.hypot(base[:, None, 0] - other[None, :, 0], base[:, None, 1] - other[None, :, 1])
        da = np.abs((base[:, None, 2] - other[None, :, 2] + math.pi) % (2 * math.pi) - math.pi)
        ok = (d <= MATCH_PX) & (da <= math.radians(MATCH_DEG))
        votes += ok.any(axis=1)
    return base[votes >= MIN_VOTES, :4].copy()
