from collections import Counter

import numpy as np

from appliance.domain import Position
from drivers.synthetic import FingerClass, Hand, generate_hand, hand_classes


def test_hand_holds_ten_distinct_fingers_by_position(hand: Hand):
    assert len(hand) == 10
    assert [f.position for f in hand] == [Position(p) for p in range(1, 11)]
    assert hand[Position.RIGHT_THUMB] is hand.fingers[0]
    assert hand[10] is hand.fingers[9]
    ridges = [f.ridges for f in hand]
    for i in range(10):
        for j in range(i + 1, 10):
            assert ridges[i].shape != ridges[j].shape or not np.array_equal(ridges[i], ridges[j])


def test_generate_hand_lists_fingers_by_position(hand: Hand):
    fingers = generate_hand(77)
    assert [f.seed for f in fingers] == [f.seed for f in hand]
    assert [f.finger_class for f in fingers] == hand_classes(77)


def test_thumbs_are_the_largest_and_little_fingers_the_smallest(hand: Hand):
    area = {f.position: f.size[0] * f.size[1] for f in hand}
    for thumb, little in ((1, 5), (6, 10)):
        others = [area[Position(p)] for p in range(thumb + 1, thumb + 4)]
        assert area[Position(thumb)] > max(others)
        assert area[Position(little)] < min(others)


def test_class_frequencies_are_those_of_real_hands():
    counts: Counter[FingerClass] = Counter()
    per_hand_right_loops = Counter()
    for seed in range(400):
        classes = hand_classes(seed)
        counts.update(classes)
        per_hand_right_loops.update(
            {
                "right": classes[:5].count(FingerClass.RIGHT_LOOP),
                "left": classes[5:].count(FingerClass.RIGHT_LOOP),
            }
        )
    total = sum(counts.values())
    loops = (counts[FingerClass.LEFT_LOOP] + counts[FingerClass.RIGHT_LOOP]) / total
    whorls = counts[FingerClass.WHORL] / total
    arches = (counts[FingerClass.ARCH] + counts[FingerClass.TENTED_ARCH]) / total
    assert 0.58 < loops < 0.72
    assert 0.23 < whorls < 0.37
    assert 0.02 < arches < 0.10
    # loops open towards the little finger: right loops on the right hand
    assert per_hand_right_loops["right"] > 5 * per_hand_right_loops["left"]


def test_hand_is_the_same_for_the_same_seed():
    assert hand_classes(123) == hand_classes(123)
    assert any(hand_classes(s) != hand_classes(123) for s in range(124, 130))
