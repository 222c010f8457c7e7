"""The fine-tuning tool rebuilds a released ONNX model as a trainable network exactly, and
averages weights as it says (models.training.finetune)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="fine-tuning needs torch (pip install -e '.[train]')")
onnx = pytest.importorskip("onnx", reason="fine-tuning reads ONNX graphs")
ort = pytest.importorskip("onnxruntime")

from models.training.finetune import WeightMean, folded_net, load_released  # noqa: E402
from models.training.train import export  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "minutiae" / "minutiae.onnx"


def test_the_shipped_model_is_rebuilt_exactly():
    net = load_released(SHIPPED).eval()
    image = np.random.default_rng(7).normal(size=(1, 1, 96, 136)).astype(np.float32)
    expected = ort.InferenceSession(str(SHIPPED)).run(None, {"image": image})
    with torch.no_grad():
        got = [t.numpy() for t in net(torch.from_numpy(image))]
    assert [g.shape for g in got] == [e.shape for e in expected] == [
        (1, 1, 12, 17),
        (1, 2, 12, 17),
        (1, 2, 12, 17),
        (1, 1, 12, 17),
    ]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-4)


def test_an_exported_folded_network_round_trips(tmp_path):
    torch.manual_seed(3)
    net = folded_net(16).eval()
    export(net, tmp_path / "m.onnx")
    again = load_released(tmp_path / "m.onnx")
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_file_of_another_network_is_refused(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Conv2d(8, 6, 1))
    torch.onnx.export(other, (torch.zeros(1, 1, 16, 16),), str(tmp_path / "o.onnx"), dynamo=False)
    with pytest.raises(ValueError, match=r"o\.onnx: 2 convolutions"):
        load_released(tmp_path / "o.onnx")


def test_the_weight_mean_is_the_mean_of_the_snapshots():
    net = torch.nn.Linear(3, 2)
    mean = WeightMean(net)
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            net.weight.fill_(value)
            net.bias.fill_(-value)
        mean.take(net)
    assert mean.taken == 3
    assert torch.allclose(mean.mean["weight"], torch.full((2, 3), 3.0))
    assert torch.allclose(mean.mean["bias"], torch.full((2,), -3.0))


def test_a_fine_tune_trains_on_the_base_model_s_own_fingers(tmp_path, data_dir, capsys):
    import json
    import shutil

    from appliance.minutiae import DEFAULT_MODEL_DIR
    from models.training import finetune
    from models.training.data import FVC_CACHE, _save, load_fvc

    base = tmp_path / "base"
    shutil.copytree(DEFAULT_MODEL_DIR, base)
    manifest = json.loads((base / "manifest.json").read_text())
    manifest["training"]["fingers"] = [106]  # a model of finger 106 only
    (base / "manifest.json").write_text(json.dumps(manifest))
    # The cache holds two labelled prints of 106 and three of 101; the data folder is absent,
    # so only the cache can supply them.
    cache = tmp_path / "cache"
    (cache / FVC_CACHE).mkdir(parents=True)
    for finger, count in ((106, 2), (101, 3)):
        for imp in range(1, count + 1):
            image = load_fvc(data_dir / "fvc2002" / "DB1_B" / f"{finger}_{imp}.tif", "DB1_B")
            _save(cache / FVC_CACHE / f"DB1_B_{finger}_{imp}.npz", image, np.zeros((0, 5)))

    out = tmp_path / "out"
    args = ["--out", str(out), "--cache", str(cache), "--data", str(tmp_path / "no-data")]
    assert finetune.main([str(base), *args, "--masters", "1", "--steps", "1",
                          "--average-every", "1"]) == 0

    assert "2 real impressions" in capsys.readouterr().err
    written = json.loads((out / "manifest.json").read_text())
    assert written["training"]["fingers"] == [106]
    assert "fvc_threshold" not in written["training"]["threshold_choice"]  # no data: synthetic
