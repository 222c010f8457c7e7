import json
import shutil
from pathlib import Path

import pytest

from appliance.errors import ImagingError
from appliance.minutiae import DEFAULT_MODEL_DIR, MinutiaeExtractor, ModelIntegrityError
from appliance.minutiae.manifest import file_sha256, load_manifest


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "minutiae"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def test_shipped_model_matches_its_manifest():
    manifest = load_manifest(DEFAULT_MODEL_DIR)
    assert file_sha256(manifest.model_path) == manifest.sha256
    assert manifest.model_path.stat().st_size < 2_000_000
    assert manifest.ppi == 500 and manifest.stride in (4, 8)
    assert 0.0 < manifest.threshold < 1.0
    MinutiaeExtractor(DEFAULT_MODEL_DIR)


def test_manifest_states_opset_and_tensors():
    raw = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
    assert raw["opset"] >= 17
    assert [t["name"] for t in raw["inputs"]] == ["image"]
    assert [t["name"] for t in raw["outputs"]] == ["heat", "offset", "direction", "kind"]
    assert all(t["dtype"] == "float32" for t in raw["inputs"] + raw["outputs"])


def test_altered_model_is_refused_naming_file_and_digest(model_copy: Path):
    manifest = load_manifest(model_copy)
    data = bytearray(manifest.model_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    manifest.model_path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as caught:
        MinutiaeExtractor(model_copy)
    assert isinstance(caught.value, ImagingError)
    assert str(manifest.model_path) in str(caught.value)
    assert manifest.sha256 in str(caught.value)
    assert caught.value.expected_sha256 == manifest.sha256


def test_missing_model_is_refused_naming_file_and_digest(model_copy: Path):
    manifest = load_manifest(model_copy)
    manifest.model_path.unlink()
    with pytest.raises(ModelIntegrityError) as caught:
        MinutiaeExtractor(model_copy)
    assert str(manifest.model_path) in str(caught.value)
    assert manifest.sha256 in str(caught.value)


def test_missing_manifest_is_refused(model_copy: Path):
    (model_copy / "manifest.json").unlink()
    with pytest.raises(ModelIntegrityError, match="manifest"):
        MinutiaeExtractor(model_copy)


def test_manifest_output_spec_must_match_the_model(model_copy: Path):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw["outputs"][0]["name"] = "heatmap"
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match="outputs"):
        MinutiaeExtractor(model_copy)


def test_manifest_input_shape_must_match_the_model(model_copy: Path):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw["inputs"][0]["shape"] = [1, 3, "H", "W"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match="inputs"):
        MinutiaeExtractor(model_copy)


def test_a_manifest_without_a_suppression_means_the_old_decoding(model_copy: Path):
    """Models 1.1.0 and earlier chose their threshold with cell maxima and 6 px; their
    manifests do not say so, and must keep meaning it."""
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw.pop("suppression", None)
    raw.pop("min_distance_px", None)
    raw.pop("aligned_distance_px", None)
    raw.pop("min_minutiae", None)
    raw.pop("floor_threshold", None)
    path.write_text(json.dumps(raw))
    manifest = load_manifest(model_copy)
    assert (manifest.suppression, manifest.min_distance_px) == ("cell-maxima", 6.0)
    assert manifest.aligned_distance_px == 0.0
    assert manifest.min_minutiae == 0  # no top-up


def test_an_unknown_suppression_in_the_manifest_is_refused(model_copy: Path):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw["suppression"] = "watershed"
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match="suppression"):
        MinutiaeExtractor(model_copy)


@pytest.mark.parametrize(
    ("key", "value"),
    [("aligned_distance_px", -1), ("min_minutiae", 151), ("floor_threshold", 0.0)],
)
def test_a_decoding_value_out_of_range_is_refused(model_copy: Path, key: str, value: float):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw[key] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match=key):
        MinutiaeExtractor(model_copy)


def test_the_top_up_adds_weaker_minutiae_after_the_threshold_s_own(
    model_copy: Path, impressions
):
    """With ``min_minutiae`` a print that the threshold leaves short gets the strongest of its
    weaker detections too, down to the floor, after the ones the threshold keeps."""
    image = impressions[0].image
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw.update(min_minutiae=0)
    path.write_text(json.dumps(raw))
    plain = MinutiaeExtractor(model_copy, threshold=0.9).extract(image, 500)
    floor = MinutiaeExtractor(model_copy, threshold=0.06).extract(image, 500)
    assert len(plain) < 25 < len(floor)  # the print has the candidates
    raw.update(min_minutiae=25, floor_threshold=0.06)
    path.write_text(json.dumps(raw))
    topped = MinutiaeExtractor(model_copy, threshold=0.9).extract(image, 500)
    assert len(topped) == 25
    assert topped[: len(plain)] == plain
    assert all(6 <= m.quality < 90 for m in topped[len(plain) :])
    assert topped == floor[:25]  # the strongest of the floor's detections
