"""The ensemble tool: one ONNX file whose maps are the mean of its members' maps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ensemble tool needs the onnx package")
ort = pytest.importorskip("onnxruntime")

from appliance.minutiae import MinutiaeExtractor  # noqa: E402
from appliance.minutiae.extractor import DEFAULT_MODEL_DIR  # noqa: E402
from appliance.minutiae.manifest import file_sha256  # noqa: E402
from models.training.ensemble import join  # noqa: E402
from models.training.release import OUTPUT_NAMES, write_manifest  # noqa: E402

SHIPPED = DEFAULT_MODEL_DIR / "minutiae.onnx"


def perturbed(path: Path) -> None:
    """The shipped model with every weight tensor scaled a little: a second, different member."""
    model = onnx.load(str(SHIPPED))
    rng = np.random.default_rng(7)
    for init in model.graph.initializer:
        array = onnx.numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.ndim == 4:
            noisy = array * rng.uniform(0.9, 1.1, size=array.shape).astype(np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(path))


def run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {"image": x})


def test_joined_maps_are_the_members_mean_with_unit_directions(tmp_path: Path) -> None:
    other = tmp_path / "other.onnx"
    perturbed(other)
    joined = tmp_path / "joined.onnx"
    join([SHIPPED, other], joined)
    x = np.random.default_rng(0).normal(size=(1, 1, 96, 136)).astype(np.float32)
    a, b, j = run(SHIPPED, x), run(other, x), run(joined, x)
    assert not np.allclose(a[0], b[0])  # the members really differ
    heat, offset, direction, kind = j
    np.testing.assert_allclose(heat, (a[0] + b[0]) / 2, atol=1e-5)
    np.testing.assert_allclose(offset, (a[1] + b[1]) / 2, atol=1e-5)
    np.testing.assert_allclose(kind, (a[3] + b[3]) / 2, atol=1e-5)
    mean_dir = a[2] + b[2]
    mean_dir /= np.linalg.norm(mean_dir, axis=1, keepdims=True)
    np.testing.assert_allclose(direction, mean_dir, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0, atol=1e-4)
    session = ort.InferenceSession(str(joined), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)


def test_the_runtime_loads_a_joined_model_through_its_manifest(tmp_path: Path) -> None:
    """Two copies of the shipped model joined: the station finds the same minutiae."""
    from drivers.synthetic import generate_master

    join([SHIPPED, SHIPPED], tmp_path / "minutiae.onnx")
    write_manifest(tmp_path, 0.10, {}, flips=2)
    image = generate_master(4242).impression(np.random.default_rng(3), quality=0.8).image
    joined = MinutiaeExtractor(tmp_path)
    assert joined.manifest.flips == 2 and joined.threshold == 0.10
    assert joined.manifest.sha256 == file_sha256(tmp_path / "minutiae.onnx")
    one = MinutiaeExtractor(_copy_with_flips(tmp_path, 2), threshold=0.10).extract(image)
    two = joined.extract(image)
    assert len(two) > 15
    assert len(one) == len(two)
    np.testing.assert_allclose([(m.x, m.y) for m in one], [(m.x, m.y) for m in two], atol=1e-3)


def _copy_with_flips(tmp_path: Path, flips: int) -> Path:
    """The shipped model alone in a folder whose manifest asks for ``flips`` mirror runs."""
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(SHIPPED, folder / "minutiae.onnx")
    write_manifest(folder, 0.10, {}, flips=flips)
    return folder


def test_an_ensemble_needs_two_members(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two members"):
        join([SHIPPED], tmp_path / "joined.onnx")
