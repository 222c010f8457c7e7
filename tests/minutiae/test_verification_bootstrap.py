"""The benchmark's uncertainty figures: the weighted EER and the finger bootstrap."""

from __future__ import annotations

import numpy as np

from models.training.verification import finger_bootstrap, rates, weighted_rates


def _pairs(fingers: int, impressions: int) -> np.ndarray:
    keys = [(f, i) for f in range(fingers) for i in range(impressions)]
    return np.array([(a[0], b[0]) for n, a in enumerate(keys) for b in keys[n + 1 :]])


def _brute_force(gen: np.ndarray, imp: np.ndarray) -> tuple[float, float]:
    """EER and FNMR at FMR <= 1 %, threshold by threshold (the definition, written plainly)."""
    thresholds = np.unique(np.concatenate([gen, imp, [np.inf]]))
    fnmr = np.array([(gen < t).mean() for t in thresholds])
    fmr = np.array([(imp >= t).mean() for t in thresholds])
    i = int(np.argmin(np.abs(fnmr - fmr)))
    ok = fmr <= 0.01
    return float((fnmr[i] + fmr[i]) / 2), float(fnmr[ok].min()) if ok.any() else 1.0


def test_rates_and_weighted_eer_with_unit_weights_follow_the_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        gen = rng.integers(0, 60, size=int(rng.integers(5, 80))).astype(np.float64)
        imp = rng.integers(0, 40, size=int(rng.integers(20, 400))).astype(np.float64)
        expected = _brute_force(gen, imp)
        assert rates(gen, imp) == expected
        assert weighted_rates(gen, np.ones_like(gen), imp, np.ones_like(imp)) == expected[0]


def test_weights_count_scores_repeatedly() -> None:
    gen, imp = np.array([10.0, 30.0, 50.0]), np.array([5.0, 20.0, 40.0, 8.0])
    gw, iw = np.array([2.0, 1.0, 3.0]), np.array([1.0, 2.0, 1.0, 3.0])
    expected = rates(np.repeat(gen, gw.astype(int)), np.repeat(imp, iw.astype(int)))[0]
    assert weighted_rates(gen, gw, imp, iw) == expected


def test_bootstrap_separates_a_real_difference_and_not_a_tie() -> None:
    pairs = _pairs(10, 8)
    genuine = pairs[:, 0] == pairs[:, 1]
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 6.0, len(pairs))
    good = np.where(genuine, 40.0, 10.0) + noise  # well separated
    bad = np.where(genuine, 22.0, 15.0) + noise  # overlapping
    reps = finger_bootstrap(pairs, {"good": good, "bad": bad, "same": good.copy()}, reps=200)
    assert set(reps) == {"good", "bad", "same"}
    assert all(len(v) == 200 for v in reps.values())
    diff = reps["good"] - reps["bad"]
    assert np.percentile(diff, 97.5) < 0.0  # good is better in (nearly) every resample
    assert np.all(reps["same"] == reps["good"])  # same scores, same resamples, same EERs
    plain = rates(good[genuine], good[~genuine])[0]
    assert np.percentile(reps["good"], 2.5) <= plain <= np.percentile(reps["good"], 97.5)


def test_bootstrap_is_seeded() -> None:
    pairs = _pairs(6, 4)
    scores = {"x": np.random.default_rng(1).normal(20.0, 8.0, len(pairs))}
    a = finger_bootstrap(pairs, scores, reps=30, seed=5)["x"]
    b = finger_bootstrap(pairs, scores, reps=30, seed=5)["x"]
    c = finger_bootstrap(pairs, scores, reps=30, seed=6)["x"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
