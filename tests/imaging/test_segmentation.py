"""Slap segmentation: every fingertip found, numbered by hand and order, boxed where it lies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from appliance.domain import SLAP_FINGERS, Position
from appliance.imaging.segmentation import segment_slap
from tests.imaging.conftest import annotations, load_gray


def iou(a, b) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def truth_bounds(slap, index: int) -> tuple[int, int, int, int]:
    """Bounding box of finger ``index``'s contact pixels in a synthetic slap."""
    ys, xs = np.nonzero(slap.labels == index + 1)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.fixture(scope="module")
def slaps(synthetic, hand):
    rng = np.random.default_rng(31)
    return {
        Position.PLAIN_LEFT_FOUR: synthetic.slap([hand[9], hand[8], hand[7], hand[6]], rng),
        Position.PLAIN_THUMBS: synthetic.slap([hand[5], hand[0]], rng, thumbs=True),
        "no little": synthetic.slap(hand[1:4], rng),
        "no index": synthetic.slap(hand[2:5], rng),
    }


def test_a_right_hand_slap_is_numbered_index_to_little(right_booking):
    seg, slap = right_booking.segmentation, right_booking.slap
    assert [f.position for f in seg.fingers] == list(SLAP_FINGERS[Position.PLAIN_RIGHT_FOUR])
    assert seg.complete and not seg.positions_inferred
    for i, finger in enumerate(seg.fingers):
        assert iou(finger.bounds, truth_bounds(slap, i)) > 0.8


@pytest.mark.parametrize("which", [Position.PLAIN_LEFT_FOUR, Position.PLAIN_THUMBS])
def test_left_hand_and_thumbs_are_numbered_from_the_image(slaps, which):
    slap = slaps[which]
    seg = segment_slap(slap.image, which)
    assert [f.position for f in seg.fingers] == list(SLAP_FINGERS[which])
    assert [f.position for f in seg.fingers] == slap.positions
    for i, finger in enumerate(seg.fingers):
        assert iou(finger.bounds, truth_bounds(slap, i)) > 0.8


def test_segments_for_the_transaction(right_booking):
    seg = right_booking.segmentation
    segments = seg.segment_positions()
    assert [s["finger"] for s in segments] == [2, 3, 4, 5]
    for s, finger in zip(segments, seg.fingers, strict=True):
        assert 0 <= s["left"] < s["right"] < 1600 and 0 <= s["top"] < s["bottom"] < 1500
        assert finger.image.dtype == np.uint8
        assert finger.image.shape == (s["bottom"] - s["top"] + 1, s["right"] - s["left"] + 1)
    polygons = seg.alternate_segment_positions()
    assert all(len(p["points"]) == 4 for p in polygons)
    json.dumps({"seg": segments, "aseg": polygons})


def test_a_finger_off_the_slap_is_reported_missing(slaps):
    seg = segment_slap(slaps["no little"].image, Position.PLAIN_RIGHT_FOUR)
    assert len(seg.fingers) == 3
    assert not seg.complete
    assert seg.positions_inferred
    assert seg.missing == [Position.RIGHT_LITTLE]
    assert [f.position for f in seg.fingers] == [2, 3, 4]


def test_annotated_absent_fingers_are_not_guessed(slaps):
    seg = segment_slap(
        slaps["no index"].image, Position.PLAIN_RIGHT_FOUR, absent={Position.RIGHT_INDEX}
    )
    assert [f.position for f in seg.fingers] == [3, 4, 5]
    assert seg.complete and not seg.positions_inferred
    assert seg.missing == []


def test_an_empty_platen_has_every_finger_missing():
    seg = segment_slap(np.full((1500, 1600), 242, np.uint8), Position.PLAIN_LEFT_FOUR)
    assert seg.fingers == []
    assert seg.missing == list(SLAP_FINGERS[Position.PLAIN_LEFT_FOUR])


def test_bounds_are_in_the_callers_pixels(right_booking):
    from PIL import Image

    image = right_booking.slap.image
    big = np.asarray(Image.fromarray(image).resize((3200, 3000)))  # the same slap at 1000 ppi
    seg = segment_slap(big, Position.PLAIN_RIGHT_FOUR, ppi=1000)
    assert [f.position for f in seg.fingers] == [2, 3, 4, 5]
    for f, g in zip(seg.fingers, right_booking.segmentation.fingers, strict=True):
        doubled = tuple(2 * v for v in g.bounds)
        assert iou(f.bounds, doubled) > 0.85
        assert abs(f.image.shape[0] - g.image.shape[0]) < 40  # crops stay at 500 ppi


def test_not_a_slap_position():
    with pytest.raises(ValueError):
        segment_slap(np.zeros((100, 100), np.uint8), Position.RIGHT_INDEX)


@pytest.mark.parametrize("annotation", annotations(), ids=lambda a: a["image"].split("/")[-1])
def test_real_slaps_match_the_annotations(shared_data, annotation):
    image = load_gray(shared_data / annotation["image"])
    seg = segment_slap(image, Position(annotation["slap"]), annotation["ppi"])
    truth = [Position(f["position"]) for f in annotation["fingers"]]
    assert [f.position for f in seg.fingers] == truth  # every finger, in the right order
    for finger, expected in zip(seg.fingers, annotation["fingers"], strict=True):
        assert iou(finger.bounds, expected["box"]) > 0.5
