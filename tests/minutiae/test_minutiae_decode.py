import math

import numpy as np

from appliance.minutiae.decode import decode, local_maxima


def maps(h=6, w=8):
    heat = np.full((h, w), -8.0)
    offset = np.full((2, h, w), 0.5)
    direction = np.zeros((2, h, w))
    direction[0] = 1.0
    kind = np.full((h, w), -1.0)
    return heat, offset, direction, kind


def test_one_peak_gives_one_minutia_at_its_subpixel_place_and_angle():
    heat, offset, direction, kind = maps()
    heat[2, 3] = 3.0
    offset[:, 2, 3] = (0.25, 0.75)
    a = math.radians(120)
    direction[:, 2, 3] = (math.cos(a), math.sin(a))
    kind[2, 3] = 2.0
    d = decode(heat, offset, direction, kind, stride=8, threshold=0.5)
    assert len(d) == 1
    assert d.x[0] == (3 + 0.25) * 8 - 0.5 and d.y[0] == (2 + 0.75) * 8 - 0.5
    assert math.isclose(d.angle[0], a)
    assert bool(d.bifurcation[0])
    assert 0.9 < d.probability[0] < 1.0


def test_below_threshold_and_non_maxima_are_dropped():
    heat, offset, direction, kind = maps()
    heat[1, 1] = 0.2  # p = 0.55
    heat[1, 2] = 0.4  # neighbour, stronger
    heat[4, 6] = -0.5  # p = 0.38, under the threshold
    d = decode(heat, offset, direction, kind, stride=8, threshold=0.5)
    assert len(d) == 1 and d.x[0] == 2 * 8 + 4 - 0.5


def test_detections_closer_than_the_minimum_distance_merge():
    heat, offset, direction, kind = maps()
    heat[1, 1] = 2.0
    offset[:, 1, 1] = (0.95, 0.5)
    heat[1, 3] = 1.0
    offset[:, 1, 3] = (0.05, 0.5)  # 9.6 px apart: both stay
    heat[4, 1] = 1.5
    offset[:, 4, 1] = (0.5, 0.95)
    heat[5, 2] = 1.0
    offset[:, 5, 2] = (0.1, 0.05)  # about 5 px from (4, 1): suppressed
    d = decode(heat, offset, direction, kind, stride=8, threshold=0.5)
    assert len(d) == 3
    assert list(np.round(d.probability, 2)) == sorted(np.round(d.probability, 2), reverse=True)


def test_local_maxima_keeps_plateaus():
    prob = np.zeros((3, 3))
    prob[1, 1] = prob[1, 2] = 0.7
    assert local_maxima(prob)[1, 1] and local_maxima(prob)[1, 2]
    assert not local_maxima(prob)[0, 0]
