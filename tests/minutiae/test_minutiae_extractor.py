import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from minutiae_helpers import as_array
from PIL import Image

from appliance.domain import Minutia, MinutiaType
from appliance.minutiae import DEFAULT_MODEL_DIR, MinutiaeConfig, MinutiaeExtractor
from models.training.metrics import Tally, angle_diff, match

# Floors measured on the shipped model with these test fingers (see the model card), with margin.
PRECISION_FLOOR = 0.60
RECALL_FLOOR = 0.50
ANGLE_MEDIAN_CEILING_DEG = 15.0


def test_synthetic_precision_and_recall_above_floor(extractor, impressions):
    tally = Tally()
    for imp in impressions:
        tally.add(as_array(extractor.extract(imp.image, 500)), as_array(imp.minutiae))
    assert tally.precision >= PRECISION_FLOOR, tally.precision
    assert tally.recall >= RECALL_FLOOR, tally.recall


def test_angle_convention_agrees_with_ground_truth(extractor, impressions):
    """Matched by place only: a mirrored or flipped convention would give ~90 degree errors."""
    errors = []
    for imp in impressions:
        found, truth = as_array(extractor.extract(imp.image, 500)), as_array(imp.minutiae)
        for f, t in match(found, truth, px=8.0, deg=180.0):
            errors.append(math.degrees(angle_diff(found[f, 2], truth[t, 2])))
    assert len(errors) >= 40
    assert np.median(errors) < ANGLE_MEDIAN_CEILING_DEG
    assert np.mean(np.array(errors) < 30.0) > 0.8


def test_minutiae_are_domain_objects_in_the_image(extractor, impressions):
    imp = impressions[0]
    found = extractor.extract(imp.image, 500)
    h, w = imp.image.shape
    assert found and all(isinstance(m, Minutia) for m in found)
    for m in found:
        assert -0.5 <= m.x < w and -0.5 <= m.y < h
        assert 0.0 <= m.angle < 2 * math.pi
        assert m.kind in (MinutiaType.ENDING, MinutiaType.BIFURCATION)
        assert 1 <= m.quality <= 100


@pytest.mark.parametrize("ppi", [1000, 569, 400])
def test_other_resolutions_map_back_to_input_pixels(extractor, impressions, ppi):
    imp = impressions[0]
    h, w = imp.image.shape
    size = (round(w * ppi / 500), round(h * ppi / 500))
    scaled = np.asarray(Image.fromarray(imp.image).resize(size, Image.Resampling.BICUBIC))
    found = as_array(extractor.extract(scaled, ppi))
    truth = as_array(imp.minutiae)
    truth[:, :2] = (truth[:, :2] + 0.5) * ppi / 500 - 0.5
    pairs = match(found, truth, px=12.0 * ppi / 500, deg=30.0)
    assert len(pairs) >= 0.45 * len(truth)


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (7, 7), (30, 500), (333, 257), (1000, 40)])
def test_any_size_gives_a_list(extractor, shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    found = extractor.extract(image, 500)
    assert isinstance(found, list)
    for m in found:
        assert 0 <= m.x < shape[1] and 0 <= m.y < shape[0]


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_image_gives_no_minutiae(extractor, value):
    assert extractor.extract(np.full((480, 400), value, np.uint8), 500) == []


def test_faint_flat_image_gives_no_minutiae(extractor):
    rng = np.random.default_rng(2)
    image = (200 + rng.integers(-1, 2, (480, 400))).astype(np.uint8)
    assert extractor.extract(image, 500) == []


def test_noise_is_not_a_fingerprint(extractor, impressions):
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (480, 400), dtype=np.uint8)
    found = extractor.extract(noise, 500)
    print_count = len(extractor.extract(impressions[0].image, 500))
    assert len(found) < 0.25 * print_count
    assert all(m.quality < 90 for m in found)


def test_non_image_inputs_give_no_minutiae(extractor):
    assert extractor.extract(np.zeros((50, 50), np.float32), 500) == []
    assert extractor.extract(np.zeros((4, 50, 50), np.uint8), 500) == []


def test_resolution_out_of_range_is_refused(extractor, impressions):
    with pytest.raises(ValueError):
        extractor.extract(impressions[0].image, 0)


def test_colour_image_is_read_as_grey(extractor, impressions):
    image = impressions[1].image
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    assert extractor.extract(rgb, 500) == extractor.extract(image, 500)


def test_two_threads_give_the_same_minutiae(impressions, extractor):
    two = MinutiaeExtractor(DEFAULT_MODEL_DIR, threads=2)
    a = as_array(extractor.extract(impressions[2].image, 500))
    b = as_array(two.extract(impressions[2].image, 500))
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-3)


def test_warm_up_makes_ready():
    ex = MinutiaeExtractor(DEFAULT_MODEL_DIR)
    assert not ex.ready
    ex.warm_up()
    assert ex.ready


def test_threshold_override_changes_the_count(impressions):
    low = MinutiaeConfig(threshold=0.2).build().extract(impressions[0].image, 500)
    high = MinutiaeConfig(threshold=0.9).build().extract(impressions[0].image, 500)
    assert len(low) > len(high)


def test_config_rejects_unknown_keys_and_bad_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        MinutiaeConfig(model_path="x")
    with pytest.raises(ValidationError):
        MinutiaeConfig(threads=0)
    with pytest.raises(ValidationError):
        MinutiaeConfig(threshold=1.5)
    assert MinutiaeConfig().model_dir is None  # the shipped model
    assert MinutiaeConfig().build().manifest.model_path.parent == DEFAULT_MODEL_DIR
    assert MinutiaeConfig.model_fields["threads"].description


def test_minutia_types_agree_with_ground_truth_more_often_than_chance(extractor, impressions):
    agree = total = 0
    for imp in impressions:
        found = extractor.extract(imp.image, 500)
        for f, t in match(as_array(found), as_array(imp.minutiae)):
            agree += found[f].kind == imp.minutiae[t].kind
            total += 1
    assert total >= 40
    assert agree / total >= 0.65, agree / total


_GROWTH = """
import sys
import numpy as np
from appliance.minutiae.extractor import MinutiaeExtractor
from appliance.system.memory import fix_mmap_threshold

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
fix_mmap_threshold(128)  # as the station sets it at start
ex = MinutiaeExtractor(release_memory=sys.argv[1] == "1")
ex.warm_up()
yy, xx = np.mgrid[:1200, :1000]
ridges = (128 + 90 * np.sin((xx + 0.3 * yy) / 1.5)).astype(np.uint8)  # period ~9 px
before = rss_kb()
found = ex.extract(ridges, 500)
print(rss_kb() - before, len(found))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_release_memory_gives_the_model_buffers_back_and_changes_no_result(impressions):
    # Resident growth after one 1200 x 1000 extraction, each setting in a fresh process.
    growth = {}
    for flag in ("1", "0"):
        out = subprocess.run(
            [sys.executable, "-c", _GROWTH, flag], capture_output=True, text=True, check=True
        )
        growth[flag] = int(out.stdout.split()[0])
    # The arena keeps the big run's buffers (tens of MB) unless they are released.
    assert growth["0"] > 30_000, growth
    assert growth["1"] < growth["0"] / 2, growth
    kept = MinutiaeExtractor(DEFAULT_MODEL_DIR, release_memory=False)
    freed = MinutiaeConfig(release_memory=True).build()
    for imp in impressions[:3]:
        assert kept.extract(imp.image, 500) == freed.extract(imp.image, 500)


@pytest.mark.parametrize(("mmap_kb", "releases"), [(128, True), (0, False)])
def test_the_station_releases_model_memory_only_with_a_fixed_mmap_threshold(
    tmp_path, mmap_kb, releases
):
    from appliance.app import build_processor
    from appliance.config import StationConfig

    config = StationConfig.model_validate({
        "station": {"station_id": "t", "data_dir": str(tmp_path)},
        "system": {"malloc_mmap_threshold_kb": mmap_kb},
    })
    assert config.minutiae.release_memory  # the default
    processor = build_processor(config)
    processor.warm_up()
    assert processor.extractor is not None and processor.extractor.ready
    assert processor.extractor.releases_memory is releases
    assert MinutiaeExtractor(DEFAULT_MODEL_DIR).releases_memory is False  # e.g. the CLI
