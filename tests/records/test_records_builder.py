"""Building a booking's transaction: records, fields, annotations, segments, templates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from records_support import CAR_DESCRIPTORS, WHEN

from appliance.domain import Annotation, Minutia, MinutiaType, Position
from appliance.records.builder import FingerSegment, build_transaction
from appliance.records.errors import TransactionError
from appliance.records.profile import EBTS_CAR, LOCAL_TENPRINT
from appliance.records.template import TemplateFormat, encode_ansi378, quantize
from appliance.records.transaction import DATA_FIELD, read_transaction
from appliance.records.type9 import read_m1_minutiae
from appliance.records.validate import validate_transaction
from appliance.records.wsq import decode_wsq

ORI, TCN = "NY0303000", "TCN-0001"


def build(booking, **kwargs):
    options = dict(profile=EBTS_CAR, ori=ORI, tcn=TCN, type2=CAR_DESCRIPTORS, now=WHEN)
    return build_transaction(booking, **{**options, **kwargs})


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * math.log10(255**2 / mse)


def test_full_tenprint_is_a_valid_ebts_car(make_booking):
    booking = make_booking()
    data = build(booking)
    assert validate_transaction(data, EBTS_CAR) == []
    transaction = read_transaction(data)
    assert [r.type for r in transaction.records] == [1, 2] + [14] * 13
    type1 = transaction.type1
    assert [type1.text(n) for n in (2, 4, 5, 7, 8, 9, 11, 12, 14)] == [
        "0500", "CAR", "20240506", "WVIAFIS0Z", ORI, TCN, "00.00", "00.00", "20240506070809Z"]
    assert type1.subfields(3)[0] == ["1", "14"]
    type2 = transaction.records[1]
    assert type2.text(18) == "DOE,JOHN" and type2.text(22) == "19800203"
    assert type2.text(9) == "BK-2024-0001" and type2.text(38) == "20240506"
    assert type2.get(84) is None


def test_each_impression_becomes_a_type14_with_its_wsq_image(make_booking):
    booking = make_booking()
    transaction = read_transaction(build(booking))
    images = transaction.records[2:]
    assert [int(r.text(13)) for r in images] == [*range(1, 11), 13, 14, 15]
    for record, impression in zip(images, booking.impressions, strict=True):
        height, width = impression.image.shape
        assert record.text(2) == f"{transaction.records.index(record) - 1:02d}"
        assert int(record.text(3)) == int(impression.impression_type)
        assert (record.text(4), record.text(5)) == (ORI, "20240506")
        assert (int(record.text(6)), int(record.text(7))) == (width, height)
        assert [record.text(n) for n in (8, 9, 10, 11, 12)] == ["1", "500", "500", "WSQ20", "8"]
        decoded = decode_wsq(record.fields[DATA_FIELD])
        assert psnr(decoded, impression.image) > 25
    rolled_index = images[1]
    assert rolled_index.subfields(24) == [["2", "42", "0101", "56"]]  # NFIQ 2 = 40 + 2


def test_amputated_and_unprintable_fingers_are_annotated_not_imaged(make_booking):
    booking = make_booking(skip=(5, 9))
    booking.annotations = {Position.RIGHT_LITTLE: Annotation.AMPUTATED,
                           Position.LEFT_RING: Annotation.UNABLE_TO_PRINT}
    data = build(booking)
    assert validate_transaction(data, EBTS_CAR) == []
    transaction = read_transaction(data)
    assert transaction.records[1].subfields(84) == [["05", "XX"], ["09", "UP"]]
    slaps = {int(r.text(13)): r for r in transaction.records[2:]}
    assert 5 not in slaps and 9 not in slaps
    assert slaps[13].subfields(18) == [["5", "XX"]]
    assert slaps[14].subfields(18) == [["9", "UP"]]
    assert slaps[15].get(18) is None


def test_a_missing_finger_without_annotation_is_refused(make_booking):
    with pytest.raises(TransactionError, match=r"rolled right ring \(4\)"):
        build(make_booking(skip=(4,)))
    with pytest.raises(TransactionError, match="plain thumbs"):
        build(make_booking(skip=(Position.PLAIN_THUMBS,)))


def test_single_plain_thumbs_may_replace_the_two_thumb_slap(make_booking):
    booking = make_booking(thumbs=(Position.PLAIN_RIGHT_THUMB, Position.PLAIN_LEFT_THUMB))
    data = build(booking)
    assert validate_transaction(data, EBTS_CAR) == []
    assert [int(r.text(13)) for r in read_transaction(data).records[-4:]] == [11, 12, 13, 14]


def test_annotated_finger_with_a_rolled_print_is_a_contradiction(make_booking):
    booking = make_booking()
    booking.annotations = {Position.LEFT_INDEX: Annotation.AMPUTATED}
    with pytest.raises(TransactionError, match="14.018"):
        build(booking)


def test_missing_car_descriptors_are_named(make_booking):
    descriptors = {k: v for k, v in CAR_DESCRIPTORS.items() if k not in (20, 47)}
    with pytest.raises(TransactionError) as caught:
        build(make_booking(), type2=descriptors)
    assert caught.value.field == "2.020"
    assert "2.020 POB" in str(caught.value) and "2.047 ASL" in str(caught.value)


def test_local_profile_needs_no_descriptors_from_a_records_system(make_booking):
    data = build(make_booking(), profile=LOCAL_TENPRINT, type2=None)
    assert validate_transaction(data, LOCAL_TENPRINT) == []
    assert read_transaction(data).type1.text(7) == "LOCALAFIS"


def test_slap_segments_and_their_quality_are_written(make_booking):
    boxes = [FingerSegment(Position.RIGHT_INDEX, 10, 150, 20, 300, nfiq2=61),
             FingerSegment(Position.RIGHT_MIDDLE, 160, 300, 10, 319, nfiq2=58)]
    data = build(make_booking(), segments={Position.PLAIN_RIGHT_FOUR: boxes})
    assert validate_transaction(data, EBTS_CAR) == []
    slaps = {int(r.text(13)): r for r in read_transaction(data).records[2:]}
    assert slaps[13].subfields(21) == [["2", "10", "150", "20", "300"],
                                        ["3", "160", "300", "10", "319"]]
    assert slaps[13].subfields(24) == [["2", "61", "0101", "56"], ["3", "58", "0101", "56"]]
    assert slaps[14].get(21) is None  # no boxes given: no whole-image fallback


def test_segment_outside_the_image_or_of_another_hand_is_refused(make_booking):
    outside = [FingerSegment(Position.RIGHT_INDEX, 10, 5000, 20, 300)]
    with pytest.raises(TransactionError, match="14.021"):
        build(make_booking(), segments={Position.PLAIN_RIGHT_FOUR: outside})
    wrong_hand = [FingerSegment(Position.LEFT_INDEX, 10, 50, 20, 300)]
    with pytest.raises(TransactionError, match="14.021"):
        build(make_booking(), segments={Position.PLAIN_RIGHT_FOUR: wrong_hand})


MINUTIAE = [Minutia(20.0 + 7 * i, 30.0 + 6 * i, math.radians(11 * i), MinutiaType.BIFURCATION
                    if i % 3 else MinutiaType.ENDING, 40 + i) for i in range(30)]


def test_templates_become_type9_records_linked_to_their_image(make_booking):
    booking = make_booking()
    template_bytes = encode_ansi378(MINUTIAE, width=256, height=256, ppi=500, position=7,
                                    impression_type=1, finger_quality=50)
    data = build(booking, templates={Position.RIGHT_INDEX: MINUTIAE,
                                     Position.LEFT_INDEX: template_bytes})
    assert validate_transaction(data, EBTS_CAR) == []
    transaction = read_transaction(data)
    minutiae_records = [r for r in transaction.records if r.type == 9]
    assert len(minutiae_records) == 2
    images = {int(r.text(13)): r.text(2) for r in transaction.records if r.type == 14}
    right, left = minutiae_records
    assert right.text(2) == images[2] and left.text(2) == images[7]
    assert right.text(134) == "02" and right.text(4) == "U"
    assert right.subfields(126) == [["27", "513", "0"]]
    assert right.text(136) == "30" and right.subfields(135) == [["42", "0101", "56"]]
    expected = quantize(MINUTIAE, TemplateFormat.ANSI_378_2004)
    assert read_m1_minutiae(right) == expected
    assert read_m1_minutiae(left) == expected


def test_template_for_a_finger_without_image_is_refused(make_booking):
    booking = make_booking(skip=(3,))
    booking.annotations = {Position.RIGHT_MIDDLE: Annotation.AMPUTATED}
    with pytest.raises(TransactionError, match="9.134"):
        build(booking, templates={Position.RIGHT_MIDDLE: MINUTIAE})


def test_image_that_is_not_8_bit_grayscale_is_refused(make_booking):
    booking = make_booking()
    booking.impressions[0].image = booking.impressions[0].image.astype(np.float32)
    with pytest.raises(TransactionError, match="14.999"):
        build(booking)


def test_another_implementation_reads_what_we_write(make_booking):
    nistitl = pytest.importorskip("nistitl", reason="nistitl (independent reader) not installed")
    booking = make_booking()
    data = build(booking, templates={Position.RIGHT_INDEX: MINUTIAE})
    message = nistitl.Message()
    message.parse(data)
    assert [r.type for r in message] == [1, 2] + [14] * 13 + [9]
    assert message[0][4].value == "CAR" and message[1][18].value == "DOE,JOHN"
    ours = read_transaction(data)
    for theirs, mine in zip(message.iter(14), (r for r in ours.records if r.type == 14),
                            strict=True):
        assert theirs[13].value == mine.text(13)
        assert theirs[999].value == mine.fields[DATA_FIELD]
