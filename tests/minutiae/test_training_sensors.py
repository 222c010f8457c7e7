"""Training prints made to look as other sensors would capture them (models.training.sensors):
the labels stay on the ridges they name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.training.data import Sample, random_crop
from models.training.sensors import IMITATIONS, banding, imitate, jpeg, resolution, sweep

#: Dot centres (x, y) on a white 300 x 360 page; angles are arbitrary but distinct.
DOTS = np.array([(40, 50, 0.3), (150, 180, 2.0), (250, 300, 4.5), (80, 320, 5.9)])


def dotted() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((360, 300), 255, np.uint8)
    for x, y, _ in DOTS:
        image[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = 0
    labels = np.zeros((len(DOTS), 5), np.float32)
    labels[:, :3] = DOTS
    labels[:, 4] = 1.0
    return image, labels


def darkest_near(image: np.ndarray, x: float, y: float, reach: int = 8) -> tuple[float, float]:
    """The centre of the dark pixels within ``reach`` of (x, y)."""
    y0, x0 = max(0, int(y) - reach), max(0, int(x) - reach)
    part = 255.0 - image[y0 : int(y) + reach + 1, x0 : int(x) + reach + 1].astype(float)
    part[part < 0.5 * part.max()] = 0.0
    rows, cols = np.nonzero(part)
    w = part[rows, cols]
    return float((cols * w).sum() / w.sum() + x0), float((rows * w).sum() / w.sum() + y0)


@pytest.mark.parametrize("ppi", [400.0, 569.0, 1000.0])
def test_resolution_keeps_each_label_on_its_dot(ppi: float) -> None:
    image, labels = dotted()
    out, moved = resolution(image, labels, np.random.default_rng(0), ppi=ppi)
    assert out.dtype == np.uint8 and abs(out.shape[0] - 360) <= 1 and abs(out.shape[1] - 300) <= 1
    for x, y, *_ in moved:
        cx, cy = darkest_near(out, x, y)
        assert math.hypot(cx - x, cy - y) < 1.0
    assert np.allclose(moved[:, 2], labels[:, 2])


@pytest.mark.parametrize("seed", range(5))
def test_sweep_moves_each_label_with_its_dot_and_turns_its_direction(seed: int) -> None:
    image, labels = dotted()
    out, moved = sweep(image, labels, np.random.default_rng(seed))
    assert out.shape[1] == 300 and 360 * 0.8 - 2 <= out.shape[0] <= 360 / 0.8 + 2
    assert len(moved) == len(DOTS)  # none lies so low that a slow swipe loses it
    for x, y, *_ in moved:
        cx, cy = darkest_near(out, x, y)
        assert math.hypot(cx - x, cy - y) < 1.5, (x, y, cx, cy)
    # the moved direction is the direction between the moved ends of a short step along it
    ahead = labels.copy()
    ahead[:, 0] += 3 * np.cos(labels[:, 2])
    ahead[:, 1] -= 3 * np.sin(labels[:, 2])
    _, moved_ahead = sweep(image, ahead, np.random.default_rng(seed))
    for a, b in zip(moved, moved_ahead, strict=True):
        seen = math.atan2(-(b[1] - a[1]), b[0] - a[0]) % (2 * math.pi)
        gap = abs((seen - a[2] + math.pi) % (2 * math.pi) - math.pi)
        assert gap < math.radians(1), (math.degrees(seen), math.degrees(a[2]))


def test_sweep_stretches_rows_and_shifts_them() -> None:
    image, labels = dotted()
    outs = [sweep(image, labels, np.random.default_rng(s))[0] for s in range(6)]
    assert len({o.shape[0] for o in outs}) > 1  # the swipe's speed differs between draws
    assert any(o.shape != image.shape or not np.array_equal(o, image) for o in outs)


def test_jpeg_and_banding_change_the_grey_levels_not_the_labels() -> None:
    image, labels = dotted()
    rng = np.random.default_rng(3)
    for imitation in (jpeg, banding):
        out, same = imitation(image, labels, rng)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert not np.array_equal(out, image)
        assert np.array_equal(same, labels)
    low = jpeg(image, labels, rng, quality=25)[0].astype(int)
    assert np.abs(low - image).max() > 0


def test_every_imitation_is_drawn_and_zero_draws_nothing() -> None:
    image, labels = dotted()
    shapes = set()
    rng = np.random.default_rng(7)
    for _ in range(40):
        out, moved = imitate(image, labels, rng)
        shapes.add(out.shape)
        assert moved.shape[1] == 5
    assert len(IMITATIONS) == 4 and len(shapes) > 1
    # at 0 the crop and the random stream are those of a recipe without the option
    sample = Sample(image=image, labels=labels, real=True)
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    crop_a, lab_a = random_crop(sample, a, 128)
    crop_b, lab_b = random_crop(sample, b, 128, 0.0, 0.0)
    assert np.array_equal(crop_a, crop_b) and np.array_equal(lab_a, lab_b)
    assert a.random() == b.random()
    # above 0 the print is imitated before the crop is cut
    c = np.random.default_rng(11)
    crops = [random_crop(sample, c, 128, 0.0, 1.0)[0] for _ in range(8)]
    plain = [random_crop(sample, np.random.default_rng(11), 128)[0]] * 8
    assert any(not np.array_equal(x, y) for x, y in zip(crops, plain, strict=True))
