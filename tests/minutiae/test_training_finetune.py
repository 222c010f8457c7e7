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
