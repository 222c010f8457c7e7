import numpy as np
import pytest
from synthetic_measures import erode, pixel

from appliance.domain import SLAP_FINGERS, Position
from drivers.synthetic import PLATEN_SIZE, Hand, slap


def fingers_of(hand: Hand, slap_position: Position):
    return [hand[p] for p in SLAP_FINGERS[slap_position]]


def separated(labels: np.ndarray, a: int, b: int, gap: int) -> bool:
    grown = ~erode(labels != a, gap)  # finger a grown by ``gap`` pixels
    return not np.any(grown & (labels == b))


@pytest.mark.parametrize("position", [Position.PLAIN_RIGHT_FOUR, Position.PLAIN_LEFT_FOUR])
def test_four_finger_slap_shows_four_separate_fingers_on_the_platen(hand, position):
    result = slap(fingers_of(hand, position), np.random.default_rng(int(position)))
    width, height = PLATEN_SIZE
    assert result.image.shape == (height, width) and result.image.dtype == np.uint8
    assert result.ppi == 500
    assert len(result.boxes) == len(result.minutiae) == 4
    assert result.positions == list(SLAP_FINGERS[position])
    assert set(np.unique(result.labels)) == {0, 1, 2, 3, 4}
    for i in range(1, 4):
        assert separated(result.labels, i, i + 1, 8)
    for box in result.boxes:
        x0, y0, x1, y1 = box.bbox
        assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height
        assert 250 < box.height < 620 and 180 < box.width < 450
    # left to right on the image, in the order the fingers were given
    assert all(a.cx < b.cx for a, b in zip(result.boxes, result.boxes[1:], strict=False))
    # the background is the light platen, the fingers dark ridges
    assert np.median(result.image[result.labels == 0]) > 225
    assert np.mean(result.image[erode(result.labels == 2, 20)] < 100) > 0.25


def test_slap_boxes_hold_their_fingers_and_minutiae(hand):
    result = slap(fingers_of(hand, Position.PLAIN_RIGHT_FOUR), np.random.default_rng(3))
    for i, (box, minutiae) in enumerate(zip(result.boxes, result.minutiae, strict=True)):
        mine = result.labels == i + 1
        rows, cols = np.nonzero(mine)
        corners = box.corners()
        # every finger pixel sits inside the rotated box (a pixel's slack)
        inside = _in_box(cols, rows, corners)
        assert inside.mean() > 0.999
        assert len(minutiae) >= 15
        assert all(pixel(mine, m.x, m.y) for m in minutiae)


def _in_box(x: np.ndarray, y: np.ndarray, corners: np.ndarray) -> np.ndarray:
    ok = np.ones(len(x), dtype=bool)
    for i in range(4):
        (ax, ay), (bx, by) = corners[i], corners[(i + 1) % 4]
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        ok &= cross >= -1.5 * np.hypot(bx - ax, by - ay)
    return ok


@pytest.mark.parametrize(
    ("position", "little"), [(Position.PLAIN_RIGHT_FOUR, 3), (Position.PLAIN_LEFT_FOUR, 0)]
)
def test_hand_pose_fans_the_fingers_and_drops_the_little_one(hand, position, little):
    for seed in range(2):
        boxes = slap(fingers_of(hand, position), np.random.default_rng(seed)).boxes
        tips = [b.cy - 0.5 * b.height for b in boxes]
        assert tips[little] == max(tips)  # the little finger reaches least far up
        assert boxes[little].width * boxes[little].height == min(b.width * b.height for b in boxes)
        # the outer fingers lean outwards: the left one counter-clockwise, the right one not
        assert boxes[0].angle > boxes[-1].angle


def test_thumb_slap_has_two_thumbs_side_by_side(hand):
    thumbs = fingers_of(hand, Position.PLAIN_THUMBS)
    result = slap(thumbs, np.random.default_rng(1), thumbs=True)
    assert len(result.boxes) == 2
    assert set(np.unique(result.labels)) == {0, 1, 2}
    assert separated(result.labels, 1, 2, 8)
    left, right = result.boxes
    assert left.cx < right.cx
    assert abs(left.cy - right.cy) < 150
    assert all(len(m) >= 15 for m in result.minutiae)


def test_slap_takes_fewer_fingers_when_one_is_missing(hand):
    three = fingers_of(hand, Position.PLAIN_RIGHT_FOUR)[:3]
    result = slap(three, np.random.default_rng(2))
    assert len(result.boxes) == 3
    assert set(np.unique(result.labels)) == {0, 1, 2, 3}


def test_slap_refuses_impossible_finger_counts(hand):
    fingers = list(hand)
    with pytest.raises(ValueError):
        slap(fingers[:5], np.random.default_rng(0))
    with pytest.raises(ValueError):
        slap(fingers[:3], np.random.default_rng(0), thumbs=True)


def test_same_generator_state_gives_the_same_slap(hand):
    fingers = fingers_of(hand, Position.PLAIN_THUMBS)
    a = slap(fingers, np.random.default_rng(8), thumbs=True)
    b = slap(fingers, np.random.default_rng(8), thumbs=True)
    assert np.array_equal(a.image, b.image)
    assert a.boxes == b.boxes
