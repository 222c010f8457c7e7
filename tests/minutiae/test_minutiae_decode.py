import math

import numpy as np
import pytest

from appliance.minutiae.decode import (
    average,
    decode,
    kept_count,
    local_maxima,
    mirror,
    unmirror,
)


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


def test_below_threshold_and_non_maxima_are_dropped_by_cell_maxima():
    """The decoding of model 1.1.0 and earlier: a weaker neighbouring cell goes, however far
    apart the two minutiae are."""
    heat, offset, direction, kind = maps()
    heat[1, 1] = 0.2  # p = 0.55
    heat[1, 2] = 0.4  # neighbour, stronger
    heat[4, 6] = -0.5  # p = 0.38, under the threshold
    d = decode(heat, offset, direction, kind, stride=8, threshold=0.5, suppression="cell-maxima")
    assert len(d) == 1 and d.x[0] == 2 * 8 + 4 - 0.5


def test_distance_suppression_keeps_two_minutiae_in_neighbouring_cells():
    """Two minutiae 12 px apart in neighbouring cells (a short ridge's two endings) both stay
    under distance suppression; cell maxima lose the weaker one."""
    heat, offset, direction, kind = maps()
    heat[1, 1], heat[1, 2] = 0.2, 0.4
    offset[:, 1, 1] = (0.25, 0.5)
    offset[:, 1, 2] = (0.75, 0.5)  # x 9.5 and 21.5 on one row: 12 px apart
    kept = decode(heat, offset, direction, kind, stride=8, threshold=0.5, min_distance=8.0)
    assert len(kept) == 2
    assert sorted(kept.x.tolist()) == [1.25 * 8 - 0.5, 2.75 * 8 - 0.5]
    legacy = decode(
        heat, offset, direction, kind, stride=8, threshold=0.5, suppression="cell-maxima"
    )
    assert len(legacy) == 1


def test_an_unknown_suppression_is_refused():
    with pytest.raises(ValueError, match="suppression"):
        decode(*maps(), stride=8, threshold=0.5, suppression="nearest")


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


def test_the_aligned_merge_joins_a_same_direction_pair_and_keeps_opposed_ones():
    """Two detections 8 px apart in neighbouring cells: pointing the same way (10 degrees
    apart) they are one minutia reported twice and merge under an 8.5 px aligned reach;
    pointing opposite ways (a short ridge's two endings) both stay."""
    heat, offset, direction, kind = maps()
    heat[1, 1], heat[1, 2] = 0.4, 0.2
    offset[:, 1, 1] = (0.5, 0.5)
    offset[:, 1, 2] = (0.5, 0.5)  # x 11.5 and 19.5: 8 px apart
    direction[:, 1, 1] = (1.0, 0.0)
    a = np.radians(10.0)
    direction[:, 1, 2] = (np.cos(a), np.sin(a))
    args = dict(stride=8, threshold=0.5, min_distance=6.0)
    assert len(decode(heat, offset, direction, kind, **args)) == 2
    merged = decode(heat, offset, direction, kind, aligned_distance=8.5, **args)
    assert len(merged) == 1 and merged.x[0] == 11.5  # the stronger one stays
    assert len(decode(heat, offset, direction, kind, aligned_distance=7.5, **args)) == 2
    direction[:, 1, 2] = (-1.0, 0.0)
    assert len(decode(heat, offset, direction, kind, aligned_distance=8.5, **args)) == 2


def test_kept_count_tops_a_print_up_from_the_floor_only_when_it_falls_short():
    prob = np.array([0.9, 0.5, 0.3, 0.1, 0.07, 0.05])  # strongest first
    assert kept_count(prob, 0.2, 0, 0.06) == 3  # no top-up: the threshold alone
    assert kept_count(prob, 0.2, 2, 0.06) == 3  # enough above the threshold
    assert kept_count(prob, 0.2, 4, 0.06) == 4  # one more, from under the threshold
    assert kept_count(prob, 0.2, 6, 0.06) == 5  # 0.05 is under the floor
    assert kept_count(prob, 0.95, 2, 0.06) == 2
    assert kept_count(np.zeros(0), 0.2, 30, 0.06) == 0


def test_local_maxima_keeps_plateaus():
    prob = np.zeros((3, 3))
    prob[1, 1] = prob[1, 2] = 0.7
    assert local_maxima(prob)[1, 1] and local_maxima(prob)[1, 2]
    assert not local_maxima(prob)[0, 0]


def maps_with(x, y, angle_deg, h=6, w=8, stride=8):
    """Batch maps (N=1) holding one minutia at pixel (x, y) with the given ISO angle."""
    heat, offset, direction, kind = maps(h, w)
    cx, cy = int((x + 0.5) // stride), int((y + 0.5) // stride)
    heat[cy, cx] = 3.0
    offset[:, cy, cx] = ((x + 0.5) / stride - cx, (y + 0.5) / stride - cy)
    a = math.radians(angle_deg)
    direction[:, cy, cx] = (math.cos(a), math.sin(a))
    return [heat[None, None], offset[None], direction[None], kind[None, None]]


@pytest.mark.parametrize(("fx", "fy"), [(True, False), (False, True), (True, True)])
def test_unmirror_brings_a_mirrored_run_back(fx, fy):
    """What the model sees in a mirror image, brought back, is the original minutia."""
    x, y, angle = 27.5, 21.0, 120.0
    width, height = 64, 48
    mx = width - 1 - x if fx else x
    my = height - 1 - y if fy else y
    ma = angle
    if fx:
        ma = 180.0 - ma
    if fy:
        ma = -ma
    seen = maps_with(mx, my, ma)
    back = unmirror(seen, fx, fy)
    heat, offset, direction, kind = (m[0] for m in back)
    d = decode(heat[0], offset, direction, kind[0], stride=8, threshold=0.5)
    assert len(d) == 1
    assert math.isclose(d.x[0], x, abs_tol=1e-6) and math.isclose(d.y[0], y, abs_tol=1e-6)
    assert math.isclose(math.degrees(d.angle[0]), angle, abs_tol=1e-6)


def test_average_of_runs_keeps_unit_directions():
    a = maps_with(10.0, 10.0, 30.0)
    b = maps_with(10.0, 10.0, 50.0)
    heat, offset, direction, kind = average([a, b])
    d = decode(heat[0, 0], offset[0], direction[0], kind[0, 0], stride=8, threshold=0.5)
    assert math.isclose(math.degrees(d.angle[0]), 40.0, abs_tol=1e-6)
    assert np.allclose((direction**2).sum(axis=1), 1.0, atol=1e-6)


def test_mirror_is_its_own_inverse():
    image = np.arange(24, dtype=np.float32).reshape(1, 1, 4, 6)
    for fx, fy in [(True, False), (False, True), (True, True)]:
        assert np.array_equal(mirror(mirror(image, fx, fy), fx, fy), image)
