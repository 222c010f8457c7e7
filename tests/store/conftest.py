from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.domain import Booking, Impression, ImpressionType, Position, Subject
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.store import Store

SUBJECT = Subject(last_name="Quintavalle", first_name="Ottoline", date_of_birth="19810923",
                  sex="F")


def make_booking(number: str = "BK-77123", prints: int = 3, seed: int = 0) -> Booking:
    rng = np.random.default_rng(seed)
    booking = Booking(booking_number=number, subject=SUBJECT)
    for pos in range(1, prints + 1):
        image = rng.integers(0, 256, size=(120, 100), dtype=np.uint8)
        booking.impressions.append(Impression(position=Position(pos),
                                              impression_type=ImpressionType.ROLLED_LIVE_SCAN,
                                              image=image, ppi=500))
    return booking


@pytest.fixture
def key() -> bytes:
    return new_key()


@pytest.fixture
def store(tmp_path: Path, key: bytes):
    s = Store(tmp_path / "station.db", BlobCipher(key))
    s.open()
    yield s
    s.close()
