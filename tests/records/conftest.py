"""Fixtures for the records tests: NIST fixture files and synthetic ten-print bookings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from records_support import FIXTURES, tenprint_booking

from appliance.domain import Booking


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def make_booking() -> Callable[..., Booking]:
    """A complete ten-print booking factory (see ``records_support.tenprint_booking``)."""
    return tenprint_booking
