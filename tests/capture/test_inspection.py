"""The print inspector: one NBIS engine, and the sequence check on the quality step's minutiae."""

from __future__ import annotations

import pytest

from appliance.capture.inspection import PrintInspector
from appliance.domain import Booking, Impression, ImpressionType, Position, Subject
from appliance.imaging.config import QualityConfig
from appliance.imaging.matching import Bozorth3, NbisMinutiae, SequenceStatus, check_sequence
from drivers.base import CaptureMode
from drivers.emulated import EmulatedConfig, EmulatedLivescan

ROLLED = (Position.RIGHT_INDEX, Position.RIGHT_MIDDLE, Position.RIGHT_RING, Position.RIGHT_LITTLE)


@pytest.fixture(scope="module")
def booking() -> Booking:
    """The right slap and four rolled prints of one emulated subject."""
    scanner = EmulatedLivescan(EmulatedConfig(seed=31))
    scanner.open()
    try:
        prints = []
        scanner.guide(int(Position.PLAIN_RIGHT_FOUR))
        frame = scanner.capture(CaptureMode.FLAT_FOUR)
        prints.append(Impression(position=Position.PLAIN_RIGHT_FOUR, image=frame.image,
                                 impression_type=ImpressionType.PLAIN_LIVE_SCAN, ppi=frame.ppi))
        for position in ROLLED:
            scanner.guide(int(position))
            frame = scanner.capture(CaptureMode.ROLLED)
            prints.append(Impression(position=position, image=frame.image, ppi=frame.ppi,
                                     impression_type=ImpressionType.ROLLED_LIVE_SCAN))
    finally:
        scanner.close()
    return Booking(booking_number="BK-INSPECT", subject=Subject(), impressions=prints)


def test_the_sequence_check_runs_on_the_quality_step_s_minutiae(booking: Booking) -> None:
    inspector = PrintInspector(QualityConfig())
    inspector.warm_up()
    for imp in booking.impressions:
        inspector.inspect(imp, {}, 0)
    report = inspector.sequence(booking)
    assert report is not None
    assert {p: r.status for p, r in report.results.items()} == dict.fromkeys(
        ROLLED, SequenceStatus.MATCHED)
    assert inspector.mindtct_runs == 0  # no print went through MINDTCT a second time

    # the same check with MINDTCT run afresh on every print gives the same scores
    seg = inspector.inspection_for(booking.impressions[0], {}).segmentation
    assert seg is not None
    fresh = check_sequence({i.position: i.image for i in booking.impressions[1:]}, seg.crops(),
                           extractor=NbisMinutiae(engine=inspector.engine),
                           matcher=Bozorth3(engine=inspector.engine))
    assert fresh.scores == report.scores


def test_rolled_prints_without_remembered_minutiae_are_extracted(booking: Booking) -> None:
    inspector = PrintInspector(QualityConfig())
    inspector.warm_up()
    for imp in booking.impressions:
        inspector.inspect(imp, {}, 0)
    inspector.forget(booking)  # as after a restart: nothing remembered
    report = inspector.sequence(booking)
    assert report is not None and report.ok
    # the slap is inspected again (its fingers' minutiae come with NFIQ 2); the rolled are not
    assert inspector.mindtct_runs == len(ROLLED)
