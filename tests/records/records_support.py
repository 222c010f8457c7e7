"""Helpers for the records tests: where NIST data lives, grayscale loading, synthetic prints.

Synthetic prints are ridge patterns (a sine grating with a slowly bending frequency and noise),
enough for WSQ to behave as on a finger; they carry no one's biometrics.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.domain import (
    Booking,
    Impression,
    ImpressionType,
    Position,
    QualityReport,
    Subject,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "nist"
DATA_DIR = Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))

#: Type-2 values an agency's records system would supply for an EBTS CAR.
CAR_DESCRIPTORS = {
    20: "NY", 25: "W", 27: "510", 29: "180", 31: "BRO", 32: "BLK", 45: "20240506",
    47: "BURGLARY",
}
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def shared_path(*parts: str) -> Path:
    """A folder of the shared data set, or a skip saying why it is not there."""
    path = DATA_DIR.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set BST_DATA_DIR to ../shared/data)")
    return path


def gray(path: Path) -> np.ndarray:
    """A lossless WebP of the NIST set (R=G=B) as an 8-bit grayscale array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


@functools.lru_cache(maxsize=64)
def ridge_image(height: int, width: int, seed: int) -> np.ndarray:
    """A fingerprint-like ridge pattern: about 9 pixels per ridge at 500 ppi, plus noise.

    Cached and read-only: tests share the arrays, none may change them in place.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, np.pi)
    phase = 0.7 * (x * np.cos(angle) + y * np.sin(angle)) + 0.0004 * ((x - width / 2) ** 2)
    image = 128 + 90 * np.sin(phase) + rng.normal(0, 8, (height, width))
    pattern = np.clip(image, 0, 255).astype(np.uint8)
    pattern.flags.writeable = False
    return pattern


def tenprint_booking(*, rolled: int = 256, slap: tuple[int, int] = (320, 512), skip=(),
                     thumbs: tuple[Position, ...] = (Position.PLAIN_THUMBS,)) -> Booking:
    """A complete ten-print booking: rolled 1..10, slaps 13 and 14, two-thumb slap 15.

    ``skip`` leaves positions out; ``thumbs`` chooses the plain thumb impressions.
    """
    booking = Booking("BK-2024-0001", Subject("Doe", "John", "1980-02-03", "M"),
                      created_at=WHEN)
    for p in range(1, 11):
        if p in skip:
            continue
        booking.impressions.append(Impression(
            Position(p), ImpressionType.ROLLED_LIVE_SCAN, ridge_image(rolled, rolled, p),
            500, captured_at=WHEN, quality=QualityReport(nfiq2=40 + p)))
    for position in (Position.PLAIN_RIGHT_FOUR, Position.PLAIN_LEFT_FOUR, *thumbs):
        if position in skip:
            continue
        shape = slap if position.is_slap else (rolled, rolled)
        booking.impressions.append(Impression(
            position, ImpressionType.PLAIN_LIVE_SCAN, ridge_image(*shape, int(position)),
            500, captured_at=WHEN,
            quality=None if position.is_slap else QualityReport(nfiq2=70)))
    return booking
