"""The trainer's batches: with two or more workers each batch has its own seed, so the data a
training sees does not depend on how many processes draw it or on the device; the finger
choice is parsed strictly; cached real prints are read without their source images
(models.training.train, models.training.data)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the trainer needs torch (pip install -e '.[train]')")

from models.training.data import (  # noqa: E402
    FVC_CACHE,
    Sample,
    _save,
    build_fvc,
    parse_fingers,
)
from models.training.train import loader, parse_args  # noqa: E402


def _samples(seed: int, count: int, real: bool) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        image = rng.integers(0, 256, size=(180, 200), dtype=np.uint8)
        n = 12
        labels = np.stack(
            [
                rng.uniform(10, 190, n),
                rng.uniform(10, 170, n),
                rng.uniform(0, 2 * np.pi, n),
                rng.integers(0, 2, n).astype(float),
                np.ones(n),
            ],
            axis=1,
        ).astype(np.float32)
        out.append(Sample(image=image, labels=labels, real=real))
    return out


def _first(workers: int, count: int = 7) -> list[tuple[torch.Tensor, dict]]:
    args = parse_args(["--workers", str(workers), "--batch", "4", "--crop", "64"])
    syn, real = _samples(1, 5, False), _samples(2, 3, True)
    return list(islice(loader(syn, real, args), count))


def test_the_batches_are_the_same_for_any_number_of_workers():
    two, three = _first(2), _first(3)
    for (x2, t2), (x3, t3) in zip(two, three, strict=True):
        assert torch.equal(x2, x3)
        assert t2.keys() == t3.keys()
        for k in t2:
            assert torch.equal(t2[k], t3[k]), k
    # and they are not one batch repeated: each has its own seed
    assert not torch.equal(two[0][0], two[1][0])


def test_finger_lists_are_parsed_and_checked():
    assert parse_fingers("101-105") == (101, 102, 103, 104, 105)
    assert parse_fingers("106-110,101") == (101, 106, 107, 108, 109, 110)
    assert parse_fingers("103") == (103,)
    for bad in ("100-105", "105-101", "111", "abc"):
        with pytest.raises(ValueError):
            parse_fingers(bad)


def test_cached_real_prints_are_read_without_their_source(tmp_path: Path):
    folder = tmp_path / FVC_CACHE
    folder.mkdir()
    image = np.full((40, 50), 128, np.uint8)
    labels = np.array([[5.0, 6.0, 1.0, 0.0, 1.0]], np.float32)
    _save(folder / "DB1_B_106_3.npz", image, labels)
    _save(folder / "DB1_B_101_1.npz", image, labels)
    got = build_fvc(tmp_path, tmp_path / "no-data-here", (106,))
    assert len(got) == 1
    assert got[0].real and np.array_equal(got[0].image, image)
    np.testing.assert_array_equal(got[0].labels, labels)
    assert build_fvc(tmp_path, tmp_path / "no-data-here", (107,)) == []
