"""Fixtures of the imaging tests: the NBIS binding built once, a synthetic person, real data."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.domain import Position
from appliance.imaging.binding import NbisEngine
from appliance.imaging.matching import Bozorth3, NbisMinutiae
from appliance.imaging.nfiq2 import QualityAssessor
from appliance.imaging.segmentation import SlapSegmentation, segment_slap

REPO = Path(__file__).resolve().parents[2]
ANNOTATIONS = REPO / "benchmarks" / "segmentation_annotations"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real fingerprint data beside the repo, or skip with the reason."""
    path = Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data not present at {path} (set BST_DATA_DIR)")
    return path


def load_gray(path: Path) -> np.ndarray:
    """A data file as a uint8 grayscale array."""
    return np.asarray(Image.open(path).convert("L"))


@pytest.fixture(scope="session")
def engine() -> NbisEngine:
    """The one NBIS engine the suite shares, as the station does."""
    return NbisEngine()


@pytest.fixture(scope="session")
def assessor(engine: NbisEngine) -> QualityAssessor:
    return QualityAssessor(engine=engine)


@pytest.fixture(scope="session")
def bozorth(engine: NbisEngine) -> Bozorth3:
    return Bozorth3(engine=engine)


class CachedMinutiae:
    """MINDTCT that remembers each image it has seen: the suite matches the same prints in
    many combinations, and extraction is the slow part. A pluggable extractor like any other."""

    def __init__(self, extractor: NbisMinutiae) -> None:
        self.extractor = extractor
        self.cache: dict[tuple[bytes, tuple[int, ...], float], list] = {}

    def __call__(self, image: np.ndarray, ppi: float = 500) -> list:
        key = (hashlib.sha1(image.tobytes()).digest(), image.shape, float(ppi))
        if key not in self.cache:
            self.cache[key] = self.extractor(image, ppi)
        return self.cache[key]


@pytest.fixture(scope="session")
def mindtct(bozorth: Bozorth3) -> CachedMinutiae:
    return CachedMinutiae(NbisMinutiae(engine=bozorth.engine))


@pytest.fixture(scope="session")
def synthetic():
    """The synthetic fingerprint generator, or skip while it does not import."""
    return pytest.importorskip("drivers.synthetic", reason="drivers.synthetic does not import")


@pytest.fixture(scope="session")
def hand(synthetic) -> list:
    """Ten synthetic fingers of one person (item i is position i + 1)."""
    return synthetic.generate_hand(20240601)


@dataclass
class SyntheticBooking:
    """A right-hand slap, its segmentation and rolled prints of the same four fingers."""

    slap: object
    segmentation: SlapSegmentation
    rolled: dict[Position, np.ndarray]


@pytest.fixture(scope="session")
def right_booking(synthetic, hand) -> SyntheticBooking:
    rng = np.random.default_rng(11)
    slap = synthetic.slap(hand[1:5], rng)
    segmentation = segment_slap(slap.image, Position.PLAIN_RIGHT_FOUR)
    rolled = {
        Position(p): hand[p - 1].impression(rng, rolled=True).image for p in (2, 3, 4, 5)
    }
    return SyntheticBooking(slap, segmentation, rolled)


def annotations() -> list[dict]:
    """The hand-made slap annotations shipped with the benchmark."""
    return [json.loads(p.read_text()) for p in sorted(ANNOTATIONS.glob("*.json"))]
