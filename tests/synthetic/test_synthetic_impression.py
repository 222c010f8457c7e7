import math

import numpy as np
import pytest
from synthetic_measures import angle_difference, erode, fft_period, pixel

from appliance.domain import MinutiaType
from drivers.synthetic import MasterFinger, SyntheticImpression, rolled_sequence
from drivers.synthetic.skeleton import skeleton_minutiae, thin


def ridges_of(impression: SyntheticImpression) -> np.ndarray:
    return (impression.image < 140) & impression.mask


def test_flat_impression_is_a_500_ppi_uint8_print_with_dark_ridges(loop, rng):
    imp = loop.impression(rng)
    assert imp.ppi == 500
    assert imp.image.dtype == np.uint8
    assert imp.image.shape == (500, 400)
    assert imp.mask.shape == imp.image.shape and imp.mask.dtype == bool
    background = imp.image[erode(~imp.mask, 20)]
    assert 225 <= np.median(background) <= 252
    inside = imp.image[erode(imp.mask, 20)]
    # ridges dark, valleys light: both populations are there inside the contact
    assert np.mean(inside < 100) > 0.25
    assert np.mean(inside > 180) > 0.25
    assert 0.2 < imp.mask.mean() < 0.8


def test_same_generator_state_gives_the_same_impression(loop):
    a = loop.impression(np.random.default_rng(9), quality=0.6, moisture=0.3)
    b = loop.impression(np.random.default_rng(9), quality=0.6, moisture=0.3)
    c = loop.impression(np.random.default_rng(10), quality=0.6, moisture=0.3)
    assert np.array_equal(a.image, b.image)
    assert a.minutiae == b.minutiae
    assert not np.array_equal(a.image, c.image)


def test_impression_ridge_period_stays_in_range(loop, rng):
    imp = loop.impression(rng, distortion=0.0)
    rows, cols = np.nonzero(erode(imp.mask, 64))
    r, c = int(np.median(rows)), int(np.median(cols))
    period = fft_period(255.0 - imp.image[r - 64 : r + 64, c - 64 : c + 64])
    assert 7.5 <= period <= 11.5


def test_minutiae_lie_in_the_contact_area(loop, rng):
    for rolled in (False, True):
        imp = loop.impression(rng, rolled=rolled)
        assert imp.minutiae
        assert all(pixel(imp.mask, m.x, m.y) for m in imp.minutiae)
        assert len(imp.minutiae) < len(loop.minutiae) or rolled


def _matched(impression: SyntheticImpression, reach: float) -> tuple[float, float]:
    """Share of true minutiae with a skeleton minutia of the image nearby, and share of those
    whose direction agrees within 30 degrees."""
    skeleton = thin(ridges_of(impression))
    inner = erode(impression.mask, 12)
    found = skeleton_minutiae(skeleton, region=erode(impression.mask, 6))
    xy = np.array([(f.x, f.y) for f in found])
    hits, agree = 0, 0
    truth = [m for m in impression.minutiae if pixel(inner, m.x, m.y)]
    for m in truth:
        d = np.hypot(xy[:, 0] - m.x, xy[:, 1] - m.y)
        near = np.nonzero(d <= reach)[0]
        if len(near):
            hits += 1
            f = found[near[np.argmin(d[near])]]
            agree += angle_difference(f.angle, m.angle) < math.radians(30)
    assert len(truth) > 15
    return hits / len(truth), agree / max(hits, 1)


def test_undistorted_impression_keeps_minutiae_on_the_image_features(loop):
    # rotation, translation and finger curvature only: the truth must land on the features
    imp = loop.impression(np.random.default_rng(3), distortion=0.0)
    assert abs(math.degrees(imp.contact.angle)) > 1.0 or imp.contact.center != (200.0, 250.0)
    found, agree = _matched(imp, 10.0)
    assert found > 0.85
    assert agree > 0.85


def test_distorted_impressions_carry_their_minutiae_along(loop):
    for seed in (4, 5):
        imp = loop.impression(np.random.default_rng(seed))
        found, agree = _matched(imp, 10.0)
        assert found > 0.8
        assert agree > 0.8


def test_a_shifted_truth_does_not_match(loop):
    # the matching above can fail: the same minutiae moved two ridge periods aside do not fit
    imp = loop.impression(np.random.default_rng(3), distortion=0.0)
    moved = [
        type(m)(x=m.x + 18.0, y=m.y, angle=m.angle, kind=m.kind, quality=m.quality)
        for m in imp.minutiae
    ]
    shifted = SyntheticImpression(imp.image, moved, imp.mask, imp.contact)
    found, _ = _matched(shifted, 10.0)
    real, _ = _matched(imp, 10.0)
    assert found < 0.5 * real


def test_rolled_is_nail_to_nail_wider_than_flat(loop, rng):
    flat = loop.impression(rng)
    rolled = loop.impression(rng, rolled=True)
    assert rolled.image.shape == (750, 800)
    assert rolled.rolled and not flat.rolled

    def width(mask: np.ndarray) -> int:
        cols = np.nonzero(mask.any(axis=0))[0]
        return int(cols[-1] - cols[0])

    assert 1.4 <= width(rolled.mask) / width(flat.mask) <= 2.3
    assert len(rolled.minutiae) > len(flat.minutiae)
    assert 30 <= len(rolled.minutiae) <= 120


@pytest.mark.parametrize("seed", [1, 2])
def test_wet_prints_darker_and_dry_prints_lighter(loop, seed):
    def ink(moisture: float) -> float:
        imp = loop.impression(np.random.default_rng(seed), moisture=moisture)
        return float(np.mean(imp.image[erode(imp.mask, 20)] < 128))

    assert ink(0.9) > ink(0.0) + 0.05
    assert ink(-0.9) < ink(0.0) - 0.05


def test_poor_quality_is_noisier(loop):
    good = loop.impression(np.random.default_rng(6), quality=1.0)
    poor = loop.impression(np.random.default_rng(6), quality=0.2)

    # the platen background away from the finger shows the sensor noise
    def noise(imp: SyntheticImpression) -> float:
        patch = imp.image[:40, :40].astype(float)
        return float(np.std(patch - np.mean(patch)))

    assert noise(poor) > noise(good) + 1.0


def test_minutia_kinds_survive_projection(loop, rng):
    imp = loop.impression(rng)
    kinds = {m.kind for m in imp.minutiae}
    assert kinds == {MinutiaType.ENDING, MinutiaType.BIFURCATION}
    assert all(1 <= m.quality <= 100 for m in imp.minutiae)


def test_live_roll_sweeps_a_strip_across_the_platen(loop: MasterFinger, rng):
    frames = list(rolled_sequence(loop, rng, frames=9))
    assert len(frames) == 9
    centres, widths = [], []
    for frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (750, 800)
        cols = np.nonzero((frame < 128).sum(axis=0) > 5)[0]
        assert len(cols)
        centres.append(float(np.mean(cols)))
        widths.append(int(cols[-1] - cols[0]))
    steps = np.diff(centres)
    assert np.all(steps > 0) or np.all(steps < 0)
    assert abs(centres[-1] - centres[0]) > 150
    rolled = loop.impression(np.random.default_rng(0), rolled=True)
    full = np.nonzero(rolled.mask.any(axis=0))[0]
    assert max(widths) < 0.8 * (full[-1] - full[0])


def test_a_roll_needs_frames(loop, rng):
    with pytest.raises(ValueError):
        next(rolled_sequence(loop, rng, frames=0))
