"""The booking's quality report: JSON for the kiosk, the transaction and central."""

from __future__ import annotations

import json

import numpy as np

from appliance.domain import (
    Annotation,
    Booking,
    Impression,
    ImpressionType,
    Position,
    QualityReport,
)
from appliance.imaging.matching import (
    Duplicate,
    SequenceReport,
    SequenceResult,
    SequenceStatus,
)
from appliance.imaging.report import NFIQ2_PRODUCT, NFIQ2_VENDOR, booking_quality_report

BACKEND = "nbis-py 0.1.3"


def report(score: int | None, **measures: float) -> QualityReport:
    return QualityReport(
        nfiq2=score,
        measures={"UniformImage": 60.0, "SufficientFingerprintForeground": 90000.0, **measures},
        feedback=[] if score and score > 40 else ["Press a little harder."],
        failed=score is None,
        backend=BACKEND,
    )


def rolled(position: Position, score: int | None, retakes: int = 0, override: str | None = None):
    return Impression(
        position=position,
        impression_type=ImpressionType.ROLLED_LIVE_SCAN,
        image=np.zeros((4, 4), np.uint8),
        ppi=500,
        quality=report(score),
        retakes=retakes,
        override_reason=override,
    )


def build():
    booking = Booking(booking_number="B-1")
    booking.impressions += [
        rolled(Position.RIGHT_THUMB, 20, retakes=1),  # replaced by the retake below
        rolled(Position.RIGHT_THUMB, 62, retakes=1),
        rolled(Position.RIGHT_INDEX, 12, retakes=2, override="scarred finger"),
        rolled(Position.RIGHT_MIDDLE, 55),
        Impression(
            position=Position.PLAIN_RIGHT_FOUR,
            impression_type=ImpressionType.PLAIN_LIVE_SCAN,
            image=np.zeros((4, 4), np.uint8),
            ppi=500,
        ),
    ]
    booking.annotations[Position.LEFT_LITTLE] = Annotation.AMPUTATED
    plain = {
        Position.RIGHT_INDEX: report(48),
        Position.RIGHT_MIDDLE: report(None),
        Position.RIGHT_RING: report(51),
        Position.RIGHT_LITTLE: report(33),
    }
    sequence = SequenceReport(
        results={
            Position.RIGHT_INDEX: SequenceResult(
                Position.RIGHT_INDEX, Position.RIGHT_INDEX, 88, True, "matches",
                SequenceStatus.MATCHED, 88,
            ),
            Position.RIGHT_MIDDLE: SequenceResult(
                Position.RIGHT_MIDDLE, Position.RIGHT_RING, 70, False, "matches the ring",
                SequenceStatus.OUT_OF_SEQUENCE, 9,
            ),
        },
        threshold=40,
    )
    duplicates = [Duplicate(Position.RIGHT_MIDDLE, Position.RIGHT_RING, 120)]
    return booking, plain, sequence, duplicates


def test_the_report_is_json_for_every_consumer():
    booking, plain, sequence, duplicates = build()
    out = booking_quality_report(booking, plain, sequence, duplicates=duplicates)
    assert json.loads(json.dumps(out)) == out
    assert out["booking_id"] == booking.booking_id
    assert out["nfiq2_backend"] == BACKEND
    assert [p["position"] for p in out["positions"]] == list(range(1, 11))


def test_per_position_scores_retakes_overrides_and_sequence():
    booking, plain, sequence, duplicates = build()
    positions = {p["position"]: p for p in booking_quality_report(
        booking, plain, sequence, duplicates=duplicates)["positions"]}
    thumb = positions[1]["rolled"]
    assert thumb["nfiq2"] == 62 and thumb["retakes"] == 1 and thumb["gate"]["passed"]
    assert thumb["measures"] == {"uniformity": 60.0, "foreground_px": 90000.0}
    assert thumb["fqm_14_024"] == [1, 62, NFIQ2_VENDOR, NFIQ2_PRODUCT]
    index = positions[2]
    assert index["rolled"]["override_reason"] == "scarred finger"
    assert not index["rolled"]["gate"]["passed"] and index["rolled"]["overridden"]
    assert index["plain"]["nfiq2"] == 48
    assert index["sequence"]["status"] == "matched"
    middle = positions[3]
    assert middle["plain"]["fqm_14_024"][1] == 255  # a failed NFIQ 2 attempt
    assert middle["sequence"] == {
        "status": "out_of_sequence", "ok": False, "matched_position": 4, "score": 70,
        "own_score": 9, "reason": "matches the ring",
    }
    assert positions[10]["annotation"] == "XX"
    assert positions[10]["rolled"] is None


def test_summary_and_slap_fields():
    booking, plain, sequence, duplicates = build()
    out = booking_quality_report(booking, plain, sequence, duplicates=duplicates)
    summary = out["summary"]
    assert not summary["passed"]
    assert summary["out_of_sequence"] == [3]
    assert summary["retakes"] == 3 and summary["overrides"] == 1
    assert summary["duplicates"] == 1
    assert 3 in summary["below_threshold"] and 2 not in summary["below_threshold"]
    slap = out["slaps"][0]
    assert slap["position"] == 13 and not slap["passed"]
    assert slap["fqm_14_024"][0] == [2, 48, NFIQ2_VENDOR, NFIQ2_PRODUCT]
    assert slap["nqm_14_022"][0] == [2, 254]  # NFIQ 1 is not run


def test_segmentation_fills_the_type14_positions(right_booking):
    booking = Booking(booking_number="B-2")
    plain = {f.position: report(50) for f in right_booking.segmentation.fingers}
    out = booking_quality_report(
        booking, plain, None, segmentations=[right_booking.segmentation]
    )
    slap = out["slaps"][0]
    assert [s["finger"] for s in slap["segments_14_021"]] == [2, 3, 4, 5]
    assert len(slap["alternate_segments_14_025"]) == 4
    assert slap["passed"] and out["summary"]["sequence_checked"] is False
    json.dumps(out)
