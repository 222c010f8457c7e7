"""Sequence and duplicate checks with MINDTCT and BOZORTH3 from the NBIS binding."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from appliance.domain import Minutia, MinutiaType, Position
from appliance.imaging.errors import TemplateError
from appliance.imaging.matching import (
    MIN_MINUTIAE,
    SequenceStatus,
    check_duplicates,
    check_sequence,
    encode_template,
    judge_sequence,
    prepare,
)
from tests.imaging.conftest import load_gray


def test_template_layout_and_round_trip(bozorth):
    minutiae = [
        Minutia(x=300 - 10 * i, y=40 + 7 * i, angle=0.1 * i, kind=kind, quality=50 + i)
        for i, kind in enumerate([MinutiaType.ENDING, MinutiaType.BIFURCATION] * 10)
    ]
    template = encode_template(minutiae, width=320, height=480)
    assert template[:8] == b"FMR\x00 20\x00"
    assert struct.unpack(">I", template[8:12])[0] == len(template) == 26 + 6 * 20
    assert struct.unpack(">HH", template[14:18]) == (320, 480)
    assert template[25] == 20
    xs = [struct.unpack(">H", template[26 + 6 * i : 28 + 6 * i])[0] & 0x3FFF for i in range(20)]
    assert xs == sorted(xs)  # BOZORTH3 wants x-then-y order
    kinds = {template[26 + 6 * i] >> 6 for i in range(20)}
    assert kinds == {1, 2}  # 01 ending, 10 bifurcation
    loaded = bozorth.load(template)
    assert bozorth.score(loaded, loaded) > 0


def test_a_broken_template_is_a_typed_error(bozorth):
    with pytest.raises(TemplateError):
        bozorth.load(b"FMR\x00 20\x00" + b"\x00" * 10)


def test_mindtct_minutiae_follow_the_domain_convention(mindtct, hand):
    impression = hand[3].impression(np.random.default_rng(8))
    found = mindtct(impression.image, 500)
    assert len(found) >= MIN_MINUTIAE
    truth = np.array([(m.x, m.y) for m in impression.minutiae])
    agree = []
    for m in found:
        d = np.hypot(truth[:, 0] - m.x, truth[:, 1] - m.y)
        k = int(d.argmin())
        if d[k] < 6:
            diff = (m.angle_deg - impression.minutiae[k].angle_deg + 180) % 360 - 180
            agree.append(abs(diff) < 30)
    assert len(agree) >= 10
    assert np.mean(agree) > 0.8  # angles counter-clockwise from +x, along the ridge


def test_rolled_prints_match_their_slap_fingers(right_booking, mindtct, bozorth):
    report = check_sequence(
        right_booking.rolled, right_booking.segmentation.crops(),
        extractor=mindtct, matcher=bozorth,
    )
    assert report.ok, {p: r.reason for p, r in report.results.items()}
    for position, result in report.results.items():
        assert result.status is SequenceStatus.MATCHED
        assert result.matched_position == position
        assert result.score >= report.threshold


def test_swapped_rolled_prints_are_out_of_sequence(right_booking, mindtct, bozorth):
    rolled = dict(right_booking.rolled)
    rolled[Position.RIGHT_INDEX], rolled[Position.RIGHT_MIDDLE] = (
        rolled[Position.RIGHT_MIDDLE], rolled[Position.RIGHT_INDEX],
    )
    report = check_sequence(
        rolled, right_booking.segmentation.crops(), extractor=mindtct, matcher=bozorth
    )
    assert not report.ok
    assert sorted(report.flagged) == [Position.RIGHT_INDEX, Position.RIGHT_MIDDLE]
    index = report.results[Position.RIGHT_INDEX]
    assert index.status is SequenceStatus.OUT_OF_SEQUENCE
    assert index.matched_position is Position.RIGHT_MIDDLE
    assert "right middle" in index.reason
    assert report.results[Position.RIGHT_RING].ok


def test_a_finger_from_elsewhere_matches_nothing(right_booking, hand, mindtct, bozorth):
    # the left index rolled under the right middle: no finger of the right slap matches it
    elsewhere = hand[6].impression(np.random.default_rng(1), rolled=True)
    rolled = {Position.RIGHT_MIDDLE: elsewhere.image}
    report = check_sequence(
        rolled, right_booking.segmentation.crops(), extractor=mindtct, matcher=bozorth
    )
    result = report.results[Position.RIGHT_MIDDLE]
    assert result.status is SequenceStatus.NO_MATCH and result.matched_position is None
    assert result.ok and report.unconfirmed == [Position.RIGHT_MIDDLE]  # shown, not blocking
    strict = check_sequence(rolled, right_booking.segmentation.crops(), extractor=mindtct,
                            matcher=bozorth, strict=True)
    assert strict.flagged == [Position.RIGHT_MIDDLE]


def test_a_blank_roll_cannot_be_checked(right_booking, mindtct, bozorth):
    rolled = {Position.RIGHT_RING: np.full((750, 800), 242, np.uint8)}
    report = check_sequence(
        rolled, right_booking.segmentation.crops(), extractor=mindtct, matcher=bozorth
    )
    result = report.results[Position.RIGHT_RING]
    assert result.status is SequenceStatus.NOT_CHECKED
    assert result.ok and report.unconfirmed == [Position.RIGHT_RING]
    strict = check_sequence(rolled, right_booking.segmentation.crops(), extractor=mindtct,
                            matcher=bozorth, strict=True)
    assert strict.flagged == [Position.RIGHT_RING]


def test_a_finger_without_slap_print_is_not_held_against_the_roll(
    right_booking, mindtct, bozorth
):
    crops = right_booking.segmentation.crops()
    del crops[Position.RIGHT_LITTLE]
    report = check_sequence(right_booking.rolled, crops, extractor=mindtct, matcher=bozorth)
    little = report.results[Position.RIGHT_LITTLE]
    assert little.status is SequenceStatus.NOT_CHECKED and little.ok


def test_the_extractor_is_pluggable(right_booking, mindtct, bozorth):
    calls: list[tuple[int, int]] = []

    def as_minutiae(image, ppi):
        calls.append(image.shape)
        return mindtct(image, ppi)

    def as_template(image, ppi):
        h, w = image.shape
        return encode_template(mindtct(image, ppi), w, h)

    crops = right_booking.segmentation.crops()
    by_list = check_sequence(
        right_booking.rolled, crops, extractor=as_minutiae, matcher=bozorth
    )
    by_bytes = check_sequence(
        right_booking.rolled, crops, extractor=as_template, matcher=bozorth
    )
    assert len(calls) == len(right_booking.rolled) + len(crops)
    assert by_list.scores == by_bytes.scores


def test_the_same_finger_twice_is_a_duplicate(right_booking, hand, mindtct, bozorth):
    rolled = dict(right_booking.rolled)
    rolled[Position.RIGHT_RING] = hand[2].impression(np.random.default_rng(9), rolled=True).image
    found = check_duplicates(rolled, extractor=mindtct, matcher=bozorth)
    assert [(d.first, d.second) for d in found] == [(Position.RIGHT_MIDDLE, Position.RIGHT_RING)]
    assert "right middle" in found[0].reason and "right ring" in found[0].reason
    assert check_duplicates(right_booking.rolled, extractor=mindtct, matcher=bozorth) == []


def test_real_fvc_impressions_reveal_a_swap(shared_data, mindtct, bozorth):
    # FVC2002 DB1: impression 1 of fingers 101..104 stands for the slap crops, impression 3
    # for the rolled prints; then two rolled prints are swapped.
    folder = shared_data / "fvc2002/DB1_B"
    positions = [Position.RIGHT_INDEX, Position.RIGHT_MIDDLE, Position.RIGHT_RING,
                 Position.RIGHT_LITTLE]
    slap = {p: load_gray(folder / f"{101 + i}_1.tif") for i, p in enumerate(positions)}
    rolled = {p: load_gray(folder / f"{101 + i}_3.tif") for i, p in enumerate(positions)}
    assert check_sequence(rolled, slap, extractor=mindtct, matcher=bozorth).ok
    rolled[positions[1]], rolled[positions[3]] = rolled[positions[3]], rolled[positions[1]]
    report = check_sequence(rolled, slap, extractor=mindtct, matcher=bozorth)
    assert sorted(report.flagged) == [positions[1], positions[3]]
    assert report.results[positions[1]].matched_position == positions[3]


class CountingScorer:
    """BOZORTH3, counting the pairs the check asks to score."""

    def __init__(self, bozorth) -> None:
        self.bozorth = bozorth
        self.pairs: list[tuple] = []

    def score(self, a, b) -> int:
        self.pairs.append((a, b))
        return self.bozorth.score(a, b)


def test_a_genuine_roll_is_compared_with_its_own_slap_finger_only(right_booking, mindtct,
                                                                  bozorth):
    probes = prepare(right_booking.rolled, 500, mindtct, bozorth)
    gallery = prepare(right_booking.segmentation.crops(), 500, mindtct, bozorth)
    scorer = CountingScorer(bozorth)
    report = judge_sequence(probes, gallery, scorer)
    assert report.ok
    assert len(scorer.pairs) == len(probes) == 4
    assert set(report.scores) == {(p, p) for p in probes}


def test_a_swapped_roll_is_crossed_with_every_slap_finger(right_booking, mindtct, bozorth):
    rolled = dict(right_booking.rolled)
    rolled[Position.RIGHT_RING], rolled[Position.RIGHT_LITTLE] = (
        rolled[Position.RIGHT_LITTLE], rolled[Position.RIGHT_RING],
    )
    probes = prepare(rolled, 500, mindtct, bozorth)
    gallery = prepare(right_booking.segmentation.crops(), 500, mindtct, bozorth)
    scorer = CountingScorer(bozorth)
    report = judge_sequence(probes, gallery, scorer)
    assert sorted(report.flagged) == [Position.RIGHT_RING, Position.RIGHT_LITTLE]
    assert report.results[Position.RIGHT_RING].matched_position is Position.RIGHT_LITTLE
    assert report.results[Position.RIGHT_LITTLE].matched_position is Position.RIGHT_RING
    assert len(scorer.pairs) == 4 + 2 * 3  # own finger each, then the two crossed with the rest
    # every slap finger was tried for the two, as the previous check did for all
    crossed = judge_sequence(probes, gallery, bozorth, own_first=False)
    assert sorted(crossed.flagged) == sorted(report.flagged)
