"""Each captured print checked on the spot, and each booking's sequence check before submit.

Segmentation, NFIQ 2 and the gate run for every capture, on the imaging thread. The NBIS
binding's extractor takes about a second to build, so the inspector builds one
:class:`NbisEngine` at start-up (before READY) and NFIQ 2, MINDTCT and BOZORTH3 all run on it.
NFIQ 2's call also yields MINDTCT's minutiae, which the sequence check reuses instead of running
MINDTCT again. Results are kept per impression id, so the transaction reuses what the officer
was shown instead of recomputing it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.domain import (
    SLAP_FINGERS,
    Annotation,
    Booking,
    Impression,
    ImpressionType,
    Minutia,
    Position,
    QualityReport,
)
from appliance.imaging import (
    Advice,
    GateVerdict,
    QualityAssessor,
    QualityConfig,
    QualityGate,
    SequenceReport,
    SlapSegmentation,
    check_duplicates,
    check_sequence,
    segment_slap,
)
from appliance.imaging.binding import NbisEngine
from appliance.imaging.matching import Bozorth3, Duplicate, NbisMinutiae, SequenceStatus
from appliance.records.builder import FingerSegment

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Inspection:
    """What the officer is shown about one captured print."""

    verdict: GateVerdict
    report: QualityReport
    fingers: dict[Position, QualityReport] = field(default_factory=dict)
    segmentation: SlapSegmentation | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON for the kiosk (scores and sentences, no image data)."""
        return {
            "passed": self.verdict.passed,
            "needs_retake": self.verdict.needs_retake,
            "override_allowed": self.verdict.override_allowed,
            "message": self.verdict.message,
            "nfiq2": self.report.nfiq2,
            "feedback": self.report.feedback,
            "feedback_codes": [advice_code(f) for f in self.report.feedback],
            "threshold": self.verdict.threshold,
            "below": [int(p) for p in self.verdict.below],
            "fingers": {int(p): r.nfiq2 for p, r in self.fingers.items()},
            "missing": [int(p) for p in self.segmentation.missing] if self.segmentation else [],
        }


def advice_code(text: str) -> str | None:
    """The catalogue code of an advice sentence (None for a sentence outside the catalogue)."""
    try:
        return Advice(text).code
    except ValueError:
        return None


class PrintInspector:
    """Quality, segmentation and the gate for every capture; the sequence check per booking."""

    def __init__(self, config: QualityConfig, engine: NbisEngine | None = None) -> None:
        self.config = config
        self.gate = QualityGate(config)
        self.engine = engine or NbisEngine()
        self.assessor = QualityAssessor(engine=self.engine)
        self._minutiae: _RememberingExtractor | None = None
        self._matcher: Bozorth3 | None = None
        self._seen: dict[str, Inspection] = {}

    @property
    def backend(self) -> str:
        """The NFIQ 2 implementation in use (telemetry, admin page)."""
        return str(getattr(self.assessor.backend, "name", ""))

    def warm_up(self) -> None:
        """Set up the sequence check's extractor and matcher on the one engine."""
        if self.config.sequence_check:
            self._minutiae = _RememberingExtractor(NbisMinutiae(engine=self.engine))
            self._matcher = Bozorth3(engine=self.engine)

    @property
    def mindtct_runs(self) -> int:
        """Prints MINDTCT ran for on its own, beyond the minutiae of the quality step."""
        return self._minutiae.extracted if self._minutiae is not None else 0

    def prepare(self, imp: Impression, annotations: dict[Position, Annotation]) -> None:
        """Extract an accepted print's minutiae now, while the officer takes the next one.

        The sequence check at submit then only matches, which keeps the time from the last
        capture to a committed booking short.
        """
        if self._minutiae is None:
            return
        if imp.position.is_slap:
            seg = self.inspection_for(imp, annotations).segmentation
            for crop in (seg.crops().values() if seg else ()):
                self._minutiae(crop, 500)
        elif imp.impression_type is ImpressionType.ROLLED_LIVE_SCAN:
            self._minutiae(imp.image, imp.ppi)

    def inspect(self, imp: Impression, annotations: dict[Position, Annotation],
                retakes: int) -> Inspection:
        """Check one print; sets ``imp.quality``."""
        if imp.position.is_slap:
            absent = [p for p in annotations if p in SLAP_FINGERS[imp.position]]
            seg = segment_slap(imp.image, imp.position, imp.ppi, absent=absent)
            fingers = {f.position: self._assess(f.image, 500) for f in seg.fingers}
            verdict = self.gate.evaluate_slap(imp.position, fingers, seg.missing,
                                              retakes=retakes, annotations=annotations)
            scores = [r.nfiq2 for r in fingers.values() if r.nfiq2 is not None]
            summary = QualityReport(
                nfiq2=min(scores) if scores and len(scores) == len(fingers) else None,
                measures={"fingers_found": float(len(seg.fingers))},
                feedback=[s for r in fingers.values() for s in r.feedback][:3],
                failed=not fingers or any(r.failed for r in fingers.values()),
                backend=next(iter(fingers.values())).backend if fingers else "",
            )
            result = Inspection(verdict, summary, fingers, seg)
        else:
            report = self._assess(imp.image, imp.ppi)
            verdict = self.gate.evaluate(imp.position, report, impression=imp.impression_type,
                                         retakes=retakes,
                                         annotation=annotations.get(imp.position))
            result = Inspection(verdict, report)
        imp.quality = result.report
        self._seen[imp.impression_id] = result
        return result

    def _assess(self, image: np.ndarray, ppi: float) -> QualityReport:
        """NFIQ 2 of one finger; MINDTCT's minutiae from the same call kept for the check."""
        assessment = self.assessor.assess_print(image, ppi)
        if self._minutiae is not None and assessment.minutiae is not None:
            self._minutiae.remember(image, ppi, assessment.minutiae)
        return assessment.report

    def inspection_for(self, imp: Impression, annotations: dict[Position, Annotation]
                       ) -> Inspection:
        """The inspection the officer saw, or a fresh one (e.g. after a restart)."""
        found = self._seen.get(imp.impression_id)
        return found if found is not None else self.inspect(imp, annotations, imp.retakes)

    def segments(self, booking: Booking) -> dict[Position, list[FingerSegment]]:
        """14.021 finger boxes (with each finger's NFIQ 2) for every slap of the booking."""
        out: dict[Position, list[FingerSegment]] = {}
        for imp in booking.impressions:
            if not imp.position.is_slap:
                continue
            inspection = self.inspection_for(imp, booking.annotations)
            if inspection.segmentation is None:
                continue
            out[imp.position] = [
                FingerSegment(f.position, f.bounds[0], f.bounds[2], f.bounds[1], f.bounds[3],
                              nfiq2=inspection.fingers[f.position].nfiq2
                              if f.position in inspection.fingers else None)
                for f in inspection.segmentation.fingers
            ]
        return out

    def sequence(self, booking: Booking) -> SequenceReport | None:
        """Were the rolled prints taken from the right fingers? None when not applicable."""
        if not self.config.sequence_check or self._minutiae is None:
            return None
        rolled = {i.position: i.image for i in booking.impressions
                  if i.impression_type is ImpressionType.ROLLED_LIVE_SCAN}
        crops: dict[Position, np.ndarray] = {}
        for imp in booking.impressions:
            if imp.position.is_slap:
                seg = self.inspection_for(imp, booking.annotations).segmentation
                if seg is not None:
                    crops.update(seg.crops())
        if not rolled or not crops:
            return None
        return check_sequence(rolled, crops, 500, extractor=self._minutiae,
                              matcher=self._matcher, threshold=self.config.match_threshold)

    def duplicates(self, booking: Booking, sequence: SequenceReport | None) -> list[Duplicate]:
        """Rolled prints of the same finger filed under two positions.

        A rolled print the sequence check matched to its own slap finger is vouched for; only
        the others are compared with every rolled print (all of them when there is no sequence
        report, as in a booking without slaps).
        """
        if not self.config.sequence_check or self._minutiae is None:
            return []
        rolled = {i.position: i.image for i in booking.impressions
                  if i.impression_type is ImpressionType.ROLLED_LIVE_SCAN}
        among = None if sequence is None else [
            p for p in rolled
            if p not in sequence.results or sequence.results[p].status is not SequenceStatus.MATCHED
        ]
        return check_duplicates(rolled, 500, extractor=self._minutiae,
                                matcher=self._matcher,
                                threshold=self.config.duplicate_threshold, among=among)

    def kept(self) -> set[str]:
        """Impression ids of the prints whose inspection is kept."""
        return set(self._seen)

    def forget(self, booking: Booking) -> None:
        """Drop cached inspections and minutiae of a finished booking."""
        for imp in booking.impressions:
            self._seen.pop(imp.impression_id, None)
        if self._minutiae is not None:
            self._minutiae.clear()

    def discard(self, prints: list[Impression]) -> None:
        """Drop the inspections of prints that will not be submitted (retaken, cancelled).

        Minutiae are extracted for accepted prints only and serve the booking in progress;
        they go once no inspected print is left (a cancelled booking).
        """
        for imp in prints:
            self._seen.pop(imp.impression_id, None)
        if not self._seen and self._minutiae is not None:
            self._minutiae.clear()


class _RememberingExtractor:
    """MINDTCT results kept per image content, so a print is extracted once per booking.

    The quality step hands in what MINDTCT found during NFIQ 2 (:meth:`remember`); the
    extractor runs only for prints NFIQ 2 did not score.
    """

    def __init__(self, extractor: NbisMinutiae) -> None:
        self._extractor = extractor
        self._known: dict[bytes, Any] = {}
        self.extracted = 0  # prints MINDTCT had to run for, beyond the quality step

    def __call__(self, image: np.ndarray, ppi: float = 500) -> Any:
        key = self._key(image, ppi)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = self._extractor(image, ppi)
            self.extracted += 1
        return found

    def remember(self, image: np.ndarray, ppi: float, minutiae: list[Minutia]) -> None:
        """What MINDTCT found in ``image`` (its own pixels) as part of another call."""
        self._known[self._key(image, ppi)] = minutiae

    @staticmethod
    def _key(image: np.ndarray, ppi: float) -> bytes:
        digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
        digest.update(f"{image.shape}@{float(ppi)}".encode())
        return digest.digest()

    def clear(self) -> None:
        self._known.clear()

