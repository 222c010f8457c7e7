"""Helpers shared by the minutiae tests."""

import numpy as np


def as_array(minutiae) -> np.ndarray:
    """(N, 3) x, y, angle array of Minutia objects."""
    return np.array([(m.x, m.y, m.angle) for m in minutiae], dtype=np.float64).reshape(-1, 3)
