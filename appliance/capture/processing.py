"""From a finished booking to the transaction that leaves the station.

Runs on the imaging thread (numpy, WSQ and onnxruntime release the GIL). The transaction is an
ANSI/NIST-ITL 1-2011 file built by :mod:`appliance.records`; it is validated against the agency's
profile before it is queued, so a transaction the central side would refuse never enters the
outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance.domain import Annotation, Booking, Impression, Minutia, Position
from appliance.errors import RecordError
from appliance.imaging.config import QualityConfig
from appliance.minutiae.config import MinutiaeConfig

if TYPE_CHECKING:
    from appliance.capture.inspection import Inspection, PrintInspector
    from appliance.imaging import SequenceReport
    from appliance.imaging.matching import Duplicate
    from appliance.minutiae.extractor import MinutiaeExtractor

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.ansi-nist-itl.2011"


@dataclass(slots=True)
class ProcessedBooking:
    """What the store commits beside the booking."""

    transaction: bytes
    content_type: str = CONTENT_TYPE
    templates: dict[str, dict[str, bytes]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Originator:
    """Who the transactions come from: the station and its agency (Type-1 fields)."""

    station_id: str
    ori: str
    profile: str


class BookingProcessor:
    """Checks prints and builds and validates the transaction of a booking."""

    def __init__(self, quality: QualityConfig, minutiae: MinutiaeConfig,
                 originator: Originator) -> None:
        self.quality = quality
        self.minutiae = minutiae
        self.originator = originator
        self.inspector: PrintInspector | None = None
        self.extractor: MinutiaeExtractor | None = None
        self._templates: dict[str, list[Minutia]] = {}
        self._wsq: dict[str, bytes] = {}  # each accepted print's WSQ, by impression id

    def warm_up(self) -> None:
        """Load codecs, NFIQ 2 and the matcher before the station says it is ready.

        Raises QualityBackendUnavailable (naming what was tried) when no NFIQ 2 binding
        imports: the station must not take prints it cannot check.
        """
        from appliance.capture.inspection import PrintInspector

        self.inspector = PrintInspector(self.quality)
        self.inspector.warm_up()
        log.info("quality: NFIQ 2 backend %s", self.inspector.backend)
        self.extractor = self.minutiae.build()  # checks the model against its manifest
        self.extractor.warm_up()

    def inspect(self, imp: Impression, annotations: dict[Position, Annotation],
                retakes: int) -> Inspection:
        """Check one captured print (imaging thread)."""
        assert self.inspector is not None, "warm_up() first"
        return self.inspector.inspect(imp, annotations, retakes)

    def prepare(self, imp: Impression, annotations: dict[Position, Annotation]) -> None:
        """Work on an accepted print ahead of submit (imaging thread; nobody awaits it).

        Its WSQ, its minutiae and what the sequence check needs are made now, while the officer
        takes the next print, so submit only matches, assembles and commits.
        """
        if self.inspector is None:
            return
        try:
            self.inspector.prepare(imp, annotations)
            self._minutiae_of(imp)
            self._wsq_of(imp)
        except Exception:  # thread boundary: submit redoes the work if this failed
            log.exception("quality: preparing an accepted print failed")

    def forget(self, booking: Booking) -> None:
        """The booking is committed: drop what was kept for it."""
        if self.inspector is not None:
            self.inspector.forget(booking)
        for imp in booking.impressions:
            self._templates.pop(imp.impression_id, None)
            self._wsq.pop(imp.impression_id, None)

    def discard(self, prints: list[Impression]) -> None:
        """Prints that will not be submitted (retaken, cancelled): drop what was kept for them."""
        if self.inspector is not None:
            self.inspector.discard(prints)
        for imp in prints:
            self._templates.pop(imp.impression_id, None)
            self._wsq.pop(imp.impression_id, None)

    def kept(self) -> set[str]:
        """Impression ids of the prints this processor keeps an inspection or minutiae for."""
        held = set(self._templates) | set(self._wsq)
        if self.inspector is not None:
            held |= self.inspector.kept()
        return held

    def _minutiae_of(self, imp: Impression) -> list[Minutia] | None:
        """The ONNX extractor's minutiae of a rolled or single-finger print (kept per print)."""
        if self.extractor is None or imp.position.is_slap:
            return None
        found = self._templates.get(imp.impression_id)
        if found is None:
            found = self._templates[imp.impression_id] = self.extractor.extract(imp.image,
                                                                                imp.ppi)
        return found

    def prepared_wsq(self, impression_id: str) -> bytes | None:
        """The WSQ made for an accepted print ahead of submit, if it is ready."""
        return self._wsq.get(impression_id)

    def _wsq_of(self, imp: Impression) -> bytes:
        """The print's WSQ codestream, as the transaction carries it (kept per print)."""
        from appliance.records.wsq import encode_wsq

        found = self._wsq.get(imp.impression_id)
        if found is None:
            found = self._wsq[imp.impression_id] = encode_wsq(imp.image, ppi=imp.ppi)
        return found

    def sequence(self, booking: Booking) -> tuple[SequenceReport | None, list[Duplicate]]:
        """The booking's sequence and duplicate checks (imaging thread)."""
        assert self.inspector is not None, "warm_up() first"
        report = self.inspector.sequence(booking)
        return report, self.inspector.duplicates(booking, report)

    def model_versions(self) -> dict[str, str]:
        """Versions of the models and algorithms in use, for the birth message."""
        versions = {"nfiq2": self.inspector.backend} if self.inspector else {}
        if self.extractor is not None:
            versions["minutiae"] = str(self.extractor.manifest.version)
        return versions

    def build(self, booking: Booking) -> ProcessedBooking:
        """The validated transaction of ``booking``."""
        from appliance.records.builder import build_transaction
        from appliance.records.profile import get_profile
        from appliance.records.validate import validate_transaction

        profile = get_profile(self.originator.profile)
        tcn = f"{self.originator.station_id}-{booking.booking_id[:16]}"[:40]
        segments = self.inspector.segments(booking) if self.inspector else None
        templates = {imp.position: found for imp in booking.impressions
                     if (found := self._minutiae_of(imp)) is not None}
        data = build_transaction(booking, profile=profile, ori=self.originator.ori, tcn=tcn,
                                 type2=dict(booking.subject.descriptors) or None,
                                 segments=segments, templates=templates or None,
                                 encoded=dict(self._wsq))
        # WSQ encoded just now by build_transaction: walked, not decoded again (see the docstring)
        problems = validate_transaction(data, profile, decode_images=False)
        if problems:
            listed = "; ".join(str(p) for p in problems[:10])
            raise RecordError(f"the transaction does not pass its profile: {listed}")
        return ProcessedBooking(transaction=data)
