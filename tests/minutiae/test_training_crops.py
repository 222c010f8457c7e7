"""Training crops: the moisture augmentation of real prints (``--real-moisture``)."""

from __future__ import annotations

import numpy as np

from models.training.data import Sample, moisten, random_crop, synthetic_labels


def _print(seed: int = 4242) -> tuple[np.ndarray, np.ndarray]:
    from drivers.synthetic import generate_master

    imp = generate_master(seed).impression(np.random.default_rng(1), quality=0.9)
    return imp.image, synthetic_labels(imp.minutiae)


def test_wet_spreads_the_dark_ridges_and_dry_thins_them() -> None:
    image, _ = _print()
    ridges = image < 128
    wet, dry = moisten(image, wet=True, strength=1.0), moisten(image, wet=False, strength=1.0)
    assert wet.shape == dry.shape == image.shape and wet.dtype == dry.dtype == np.uint8
    # A 3 x 3 grey minimum never lightens a pixel; a maximum never darkens one.
    assert np.all(wet <= image) and np.all(dry >= image)
    assert (wet < 128).sum() > 1.2 * ridges.sum()
    assert (dry < 128).sum() < 0.8 * ridges.sum()
    half = moisten(image, wet=True, strength=0.5).astype(int)
    assert np.all(np.abs(half - (image.astype(int) + wet) / 2) <= 1)
    assert np.array_equal(moisten(image, wet=False, strength=0.0), image)


def test_only_real_prints_are_moistened_and_the_default_draws_nothing_more() -> None:
    image, labels = _print()
    real, synthetic = Sample(image, labels, real=True), Sample(image, labels, real=False)

    def crop(sample: Sample, moisture: float, seed: int = 7):
        return random_crop(sample, np.random.default_rng(seed), 96, moisture)

    plain, plain_lab = random_crop(real, np.random.default_rng(7), 96)
    for same in (crop(real, 0.0), crop(synthetic, 1.0)):
        assert np.array_equal(same[0], plain) and np.array_equal(same[1], plain_lab)

    wet_crop, wet_lab = crop(real, 1.0)
    # The same as cropping the moistened print with the draws that chose the moisture spent,
    # so the labels go with the pixels unchanged.
    rng = np.random.default_rng(7)
    rng.random()  # the draw that decides to moisten (at 1.0 it always does)
    wet, strength = bool(rng.random() < 0.5), float(rng.uniform(0.4, 1.0))
    moist = Sample(moisten(image, wet, strength), labels, real=True)
    ref, ref_lab = random_crop(moist, rng, 96)
    assert np.array_equal(wet_crop, ref) and np.array_equal(wet_lab, ref_lab)
    assert not np.array_equal(moist.image, image)
