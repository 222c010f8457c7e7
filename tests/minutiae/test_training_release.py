"""Re-choosing a trained model's threshold for another decoding (``models.training.release``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from appliance.minutiae import DEFAULT_MODEL_DIR, MinutiaeExtractor
from appliance.minutiae.manifest import file_sha256
from models.training.data import FVC_CACHE, _save, load_fvc, training_sets
from models.training.release import (
    DECODING,
    VERSION,
    Decoding,
    choose_threshold_fvc,
    left_out_set,
    redecode,
    training_finger_detections,
    training_fingers,
)


def test_redecode_rewrites_the_manifest_and_keeps_the_model_and_its_history(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    manifest = folder / "manifest.json"
    old = json.loads(manifest.read_text())
    # The manifest as model 1.1.0 shipped it: no suppression, cell maxima implied.
    for key in (
        "suppression",
        "min_distance_px",
        "aligned_distance_px",
        "min_minutiae",
        "floor_threshold",
        "decoding",
    ):
        old.pop(key, None)
    old.update(version="1.1.0", threshold=0.1)
    old["training"]["fingers"] = [101, 102]  # the prints the cache below holds
    manifest.write_text(json.dumps(old))
    sha = file_sha256(folder / "minutiae.onnx")

    # Two fingers of DB1, two impressions each: one genuine pair per finger, four impostors.
    cache = tmp_path / "cache"
    (cache / FVC_CACHE).mkdir(parents=True)
    for finger in (101, 102):
        for imp in (1, 2):
            image = load_fvc(data_dir / "fvc2002" / "DB1_B" / f"{finger}_{imp}.tif", "DB1_B")
            _save(cache / FVC_CACHE / f"DB1_B_{finger}_{imp}.npz", image, np.zeros((0, 5)))

    decoding = Decoding("distance", 6.0, 0.0, 20, 0.08)
    record = redecode(folder, cache, data_dir, decoding, "python -m ... (test)")

    new = json.loads(manifest.read_text())
    assert new["sha256"] == sha == file_sha256(folder / "minutiae.onnx")
    assert (new["suppression"], new["min_distance_px"], new["version"]) == (
        "distance",
        6.0,
        VERSION,
    )
    assert (new["min_minutiae"], new["floor_threshold"], new["aligned_distance_px"]) == (
        20,
        0.08,
        0.0,
    )
    assert new["training"] == old["training"] and new["parameters"] == old["parameters"]
    assert new["decoding"] == record
    assert record["previous"] == {
        "version": "1.1.0",
        "threshold": 0.1,
        "suppression": "cell-maxima",
        "min_distance_px": 6.0,
        "aligned_distance_px": 0.0,
        "min_minutiae": 0,
        "floor_threshold": 0.06,
    }
    assert new["threshold"] == record["threshold_choice"]["fvc_threshold"]
    assert 0.04 <= new["threshold"] <= 0.40
    extractor = MinutiaeExtractor(folder)
    assert extractor.manifest.suppression == "distance" and extractor.threshold == new["threshold"]
    assert extractor.manifest.min_minutiae == 20
    # A threshold scored elsewhere (models.training.sweep) is written as given, no grid run.
    given = redecode(folder, cache, data_dir, decoding, "python -m ... --threshold 0.2", 0.2)
    again = json.loads(manifest.read_text())
    assert again["threshold"] == 0.2 and given["threshold_choice"] == {"given_threshold": 0.2}
    # and the release before it is kept inside, so the manifest holds the whole chain
    assert given["previous"]["decoding"] == record and "decoding" not in record["previous"]
    assert again["decoding"]["previous"]["threshold"] == new["threshold"]
    assert again["sha256"] == sha


def test_a_release_that_fails_half_way_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    # No labelled prints and no data: the grid cannot be scored on real prints.
    with pytest.raises(SystemExit, match="no labelled FVC prints"):
        redecode(folder, tmp_path / "cache", tmp_path / "no-data", DECODING, "test")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_the_training_fingers_are_the_manifests(tmp_path: Path) -> None:
    # The shipped manifest predates the record: 101..105, the only ones trained on then.
    assert training_fingers(DEFAULT_MODEL_DIR) == (101, 102, 103, 104, 105)
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    record = json.loads((folder / "manifest.json").read_text())
    record["training"]["fingers"] = [106, 107, 108, 109, 110]
    (folder / "manifest.json").write_text(json.dumps(record))
    assert training_fingers(folder) == (106, 107, 108, 109, 110)


def test_a_sensor_left_out_is_neither_trained_on_nor_chooses_the_threshold(
    tmp_path: Path, data_dir: Path
) -> None:
    assert training_sets(None) == ("DB1_B", "DB2_B", "DB3_B", "DB4_B")
    assert training_sets("DB3_B") == ("DB1_B", "DB2_B", "DB4_B")
    with pytest.raises(ValueError, match="left-out set"):
        training_sets("DB5_B")
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    assert left_out_set(folder) is None
    record = json.loads((folder / "manifest.json").read_text())
    record["training"].update(fingers=[101], left_out="DB2_B")
    (folder / "manifest.json").write_text(json.dumps(record))
    assert left_out_set(folder) == "DB2_B"

    # labelled prints of finger 101 in DB1 and DB2: only DB1's are scored
    cache = tmp_path / "cache"
    (cache / FVC_CACHE).mkdir(parents=True)
    for db in ("DB1_B", "DB2_B"):
        for imp in (1, 2):
            image = load_fvc(data_dir / "fvc2002" / db / f"101_{imp}.tif", db)
            _save(cache / FVC_CACHE / f"{db}_101_{imp}.npz", image, np.zeros((0, 5)))
    assert set(training_finger_detections(folder, cache, left_out="DB2_B")) == {"DB1_B"}
    assert set(training_finger_detections(folder, cache)) == {"DB1_B", "DB2_B"}
    # with only the left-out sensor's prints there is nothing to choose the threshold on
    for path in (cache / FVC_CACHE).glob("DB1_B_*"):
        path.unlink()
    assert choose_threshold_fvc(folder, cache, left_out="DB2_B") is None
    with pytest.raises(SystemExit, match="no labelled FVC prints"):
        redecode(folder, cache, tmp_path / "no-data", DECODING, "test")
