import math

import numpy as np
import pytest
from synthetic_measures import (
    angle_difference,
    erode,
    fft_period,
    orientation_estimate,
    phase_winding,
    pixel,
    vortex,
)

from appliance.domain import Minutia, MinutiaType
from drivers.synthetic import FingerClass, MasterFinger, generate_master, poincare_singularities
from drivers.synthetic.skeleton import crossing_number, thin

SMALL = (256, 320)  # determinism does not depend on size; small masters keep the test quick


def test_same_seed_gives_the_same_master_and_another_seed_another():
    generate_master.cache_clear()
    a = generate_master(5, FingerClass.WHORL, SMALL)
    generate_master.cache_clear()
    b = generate_master(5, FingerClass.WHORL, SMALL)
    c = generate_master(6, FingerClass.WHORL, SMALL)
    assert a is not b
    assert np.array_equal(a.ridges, b.ridges)
    assert a.minutiae == b.minutiae
    assert not np.array_equal(a.ridges, c.ridges)
    assert generate_master(5, FingerClass.WHORL, SMALL) is b  # cached


def test_class_is_drawn_from_the_seed_when_not_given():
    drawn = [generate_master(seed, None, SMALL).finger_class for seed in (40, 41)]
    assert all(isinstance(c, FingerClass) for c in drawn)
    generate_master.cache_clear()
    assert [generate_master(seed, None, SMALL).finger_class for seed in (40, 41)] == drawn


def test_master_arrays_are_read_only(loop: MasterFinger):
    with pytest.raises(ValueError):
        loop.ridges[0, 0] = 0.0
    loop.minutiae.clear()  # a copy: the shared master keeps its truth
    assert loop.minutiae


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_orientation_model_has_the_class_singular_points(masters, finger_class):
    master = masters[finger_class]
    step = 4
    h, w = master.mask.shape
    theta = master.orientation.field((h // step, w // step), step=step)
    inside = master.mask[::step, ::step][: h // step, : w // step]
    cores, deltas = poincare_singularities(theta, inside)
    assert (len(cores), len(deltas)) == finger_class.singular_points
    for found, truth in ((cores, master.orientation.cores), (deltas, master.orientation.deltas)):
        for point in truth:
            nearest = min(math.hypot(c * step - point.x, r * step - point.y) for c, r in found)
            assert nearest < 2 * step


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_grown_ridges_show_the_class_singular_points(masters, finger_class):
    # orientation measured on the ridge pattern itself, not taken from the model
    master = masters[finger_class]
    block = 8
    theta = orientation_estimate(np.where(master.ridge_map, 1.0, 0.0), block)
    inside = erode(master.mask, 24)[::block, ::block][: theta.shape[0], : theta.shape[1]]
    cores, deltas = poincare_singularities(theta, inside)
    assert (len(cores), len(deltas)) == finger_class.singular_points


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_ridges_follow_the_orientation_model(masters, finger_class):
    master = masters[finger_class]
    block = 8
    theta = orientation_estimate(np.where(master.ridge_map, 1.0, 0.0), block)
    h, w = theta.shape
    model = master.orientation.field((h, w), step=block, offset=block / 2)
    inside = erode(master.mask, 24)[block // 2 :: block, block // 2 :: block][:h, :w]
    diff = np.abs((2 * (theta - model) + math.pi) % (2 * math.pi) - math.pi) / 2
    assert np.median(diff[inside]) < math.radians(6)
    assert np.mean(diff[inside] < math.radians(20)) > 0.9


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_ridge_period_is_that_of_a_500_ppi_finger(masters, finger_class):
    master = masters[finger_class]
    h, w = master.ridges.shape
    periods = [
        fft_period(master.ridges[r : r + 128, c : c + 128])
        for r, c in ((h // 2 - 64, w // 2 - 64), (h // 5, w // 2 - 64), (3 * h // 5, w // 5))
    ]
    assert all(7.5 <= p <= 11.5 for p in periods), periods


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_minutiae_count_is_that_of_a_full_finger(masters, finger_class):
    master = masters[finger_class]
    kinds = [m.kind for m in master.minutiae]
    assert 35 <= len(kinds) <= 140
    endings = kinds.count(MinutiaType.ENDING)
    assert 0.25 < endings / len(kinds) < 0.75
    assert all(isinstance(m, Minutia) and m.quality == 100 for m in master.minutiae)
    assert all(0 <= m.angle < 2 * math.pi for m in master.minutiae)


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_true_minutiae_sit_on_skeleton_endings_and_forks(masters, finger_class):
    master = masters[finger_class]
    cn = crossing_number(thin(master.ridge_map))
    ends = np.argwhere(cn == 1)
    forks = np.argwhere(cn >= 3)
    for m in master.minutiae:
        points, reach = (ends, 8.0) if m.kind is MinutiaType.ENDING else (forks, 2.0)
        d = np.hypot(points[:, 1] - m.x, points[:, 0] - m.y).min()
        assert d <= reach, (m.kind, d)


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_ridge_phase_turns_once_round_each_minutia_and_never_in_plain_flow(masters, finger_class):
    # read off the continuous ridge field, with no thinning: a minutia is a phase vortex
    master = masters[finger_class]
    field = master.ridges.astype(np.float64)
    spiral = vortex(field)
    truth = np.array([(m.x, m.y) for m in master.minutiae])
    turns = []
    for i, m in enumerate(master.minutiae):
        d = np.hypot(truth[:, 0] - m.x, truth[:, 1] - m.y)
        d[i] = np.inf
        if d.min() > 14:  # one vortex per circle
            turns.append(phase_winding(field, spiral, master.orientation.angle, m.x, m.y))
    assert len(turns) > 20
    assert np.mean(np.abs(turns) == 1) > 0.95
    rng = np.random.default_rng(0)
    inner = np.argwhere(erode(master.mask, 30))
    singular = [(p.x, p.y) for p in master.orientation.cores + master.orientation.deltas]
    plain = []
    for r, c in inner[rng.choice(len(inner), 200, replace=False)]:
        if np.hypot(truth[:, 0] - c, truth[:, 1] - r).min() < 20:
            continue
        if any(math.hypot(sx - c, sy - r) < 40 for sx, sy in singular):
            continue
        plain.append(phase_winding(field, spiral, master.orientation.angle, c, r))
    assert len(plain) > 20
    assert np.mean(np.array(plain) == 0) > 0.97


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_minutia_directions_follow_iso(masters, finger_class):
    # ending: ridge ahead (the ridge body), valley behind; fork: the stem (ridge) behind
    master = masters[finger_class]
    ridge = master.ridge_map
    ok = []
    for m in master.minutiae:
        dx, dy = math.cos(m.angle), -math.sin(m.angle)
        if m.kind is MinutiaType.ENDING:
            ok.append(pixel(ridge, m.x + 6 * dx, m.y + 6 * dy) and not pixel(ridge, m.x, m.y))
        else:
            ok.append(pixel(ridge, m.x - 5 * dx, m.y - 5 * dy) and pixel(ridge, m.x, m.y))
    assert np.mean(ok) > 0.9


@pytest.mark.parametrize("finger_class", list(FingerClass))
def test_minutia_directions_run_along_the_ridges(masters, finger_class):
    master = masters[finger_class]
    along = []
    for m in master.minutiae:
        theta = float(master.orientation.angle(np.array(m.x), np.array(m.y)))
        along.append(
            min(angle_difference(m.angle, theta), angle_difference(m.angle, theta + math.pi))
        )
    # only close to a core or delta, where the flow turns fast, may a direction stray
    assert np.mean(np.array(along) < math.radians(20)) > 0.9
    assert np.mean(np.array(along) < math.radians(45)) > 0.97


def test_minutiae_keep_off_the_skin_edge(masters):
    for master in masters.values():
        inner = erode(master.mask, 10)
        assert all(pixel(inner, m.x, m.y) for m in master.minutiae)
