"""From a finished booking to the transaction that leaves the station.

Runs on the imaging thread (numpy, WSQ and onnxruntime release the GIL). The transaction is an
ANSI/NIST-ITL 1-2011 file built by :mod:`appliance.records`; it is validated against the agency's
profile before it is queued, so a transaction the central side would refuse never enters the
outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from appliance.config import StationConfig
from appliance.domain import Booking
from appliance.errors import RecordError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.ansi-nist-itl.2011"


@dataclass(slots=True)
class ProcessedBooking:
    """What the store commits beside the booking."""

    transaction: bytes
    content_type: str = CONTENT_TYPE
    templates: dict[str, dict[str, bytes]] = field(default_factory=dict)


class BookingProcessor:
    """Builds and validates the transaction of a booking."""

    def __init__(self, config: StationConfig) -> None:
        self.config = config

    def warm_up(self) -> None:
        """Load codecs and models before the station says it is ready."""
        from appliance.records import transaction, wsq  # noqa: F401 - import cost paid now

    def model_versions(self) -> dict[str, str]:
        """Versions of the models in use, for the birth message."""
        return {}

    def build(self, booking: Booking) -> ProcessedBooking:
        """The validated transaction of ``booking``."""
        from appliance.records.builder import build_transaction
        from appliance.records.profile import get_profile
        from appliance.records.validate import validate_transaction

        profile = get_profile(self.config.records.profile)
        tcn = f"{self.config.station.station_id}-{booking.booking_id[:16]}"[:40]
        data = build_transaction(booking, profile=profile, ori=self.config.station.ori, tcn=tcn,
                                 type2=dict(booking.subject.descriptors) or None)
        problems = validate_transaction(data, profile)
        if problems:
            listed = "; ".join(str(p) for p in problems[:10])
            raise RecordError(f"the transaction does not pass its profile: {listed}")
        return ProcessedBooking(transaction=data)
