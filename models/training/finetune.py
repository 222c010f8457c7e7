"""Continue training a released model at a constant small learning rate and average its weights.

Stochastic weight averaging (Izmailov et al., 2018): from a trained model, keep training at a
constant learning rate and release the mean of the weights taken every few hundred steps, which
sits nearer the middle of a wide minimum than any single one of them. It starts from the
released ONNX file itself, so no torch checkpoint has to be kept: the export folded each batch
norm into its convolution, and the network is rebuilt in that folded form (convolutions with a
bias, no normalisation), which also leaves no batch statistics to recompute after averaging.
The data, crops and loss are the trainer's (:mod:`models.training.train`), with the real
prints of the fingers the base model was trained on (its manifest's ``training.fingers``); the
threshold is chosen as the trainer chooses it, on those fingers, with the same mirror images.

    python -m models.training.finetune models/minutiae --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import nn

from appliance.minutiae.manifest import MANIFEST_NAME, file_sha256
from models.training.data import build_fvc, build_synthetic
from models.training.model import MinutiaeNet
from models.training.release import (
    MODEL_FILE,
    choose_thresholds,
    training_fingers,
    write_manifest,
)
from models.training.train import add_data_args, export, loader, log_step, loss_fn


def folded_net(width: int) -> MinutiaeNet:
    """A :class:`MinutiaeNet` in the export's form: each block's batch norm folded away, so
    its convolution carries a bias and nothing normalises."""
    net = MinutiaeNet(width)
    for block in net.features:
        conv: nn.Conv2d = block[0]
        block[0] = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=True,
        )
        block[1] = nn.Identity()
    return net


def load_released(path: Path) -> MinutiaeNet:
    """The network of a released ONNX file, as a trainable torch module (:func:`folded_net`)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    width = 2 * int(inits[convs[0].input[1]].shape[0])
    net = folded_net(width)
    targets = [block[0] for block in net.features] + [net.head]
    if len(convs) != len(targets):
        raise ValueError(f"{path}: {len(convs)} convolutions, the network has {len(targets)}")
    with torch.no_grad():
        for node, conv in zip(convs, targets, strict=True):
            weight, bias = (inits[name] for name in node.input[1:3])
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: {node.name} is {weight.shape}, not {conv.weight.shape}")
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            conv.bias.copy_(torch.from_numpy(bias.copy()))
    return net


class WeightMean:
    """The running mean of a module's weights over the snapshots :meth:`take` was given."""

    def __init__(self, net: nn.Module) -> None:
        self.mean = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
        self.taken = 0

    def take(self, net: nn.Module) -> None:
        self.taken += 1
        with torch.no_grad():
            for k, v in net.state_dict().items():
                self.mean[k] += (v - self.mean[k]) / self.taken


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base", type=Path, help="released model folder (minutiae.onnx, manifest.json)")
    p.add_argument("--out", type=Path, required=True)
    add_data_args(p)
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--lr", type=float, default=3e-4, help="constant learning rate")
    p.add_argument("--average-every", type=int, default=400, help="steps between averaged weights")
    p.add_argument("--seed", type=int, default=1, help="of the crops (the trainer's was 0)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--attributes-only",
        action="store_true",
        help="train only the head's offset, direction and kind outputs: the heat map, and so "
        "which cells fire, stays the base model's",
    )
    return p.parse_args(argv)


def freeze_heat(net: MinutiaeNet) -> Callable[[], None]:
    """Leave only the head's non-heat outputs trainable; returns the function that puts the
    heat output's weights back after an optimiser step (weight decay would move them)."""
    for param in net.features.parameters():
        param.requires_grad_(False)
    weight, bias = net.head.weight.detach().clone(), net.head.bias.detach().clone()

    def restore() -> None:
        with torch.no_grad():
            net.head.weight[0].copy_(weight[0])
            net.head.bias[0].copy_(bias[0])

    return restore


def finetune(net: MinutiaeNet, args, fingers: tuple[int, ...]) -> tuple[MinutiaeNet, int]:
    """Train ``net`` for ``args.steps`` at ``args.lr`` on the synthetic prints and the real
    prints of ``fingers``, and return the mean of its weights taken every
    ``args.average_every`` steps (the last step included), and how many were averaged."""
    torch.manual_seed(args.seed)
    syn = build_synthetic(args.cache, args.masters)
    real = build_fvc(args.cache, args.data, fingers)
    print(f"data: {len(syn)} synthetic, {len(real)} real impressions", file=sys.stderr)
    restore = freeze_heat(net) if args.attributes_only else (lambda: None)
    trainable = [param for param in net.parameters() if param.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=1e-4)
    mean, running, t0 = WeightMean(net), {}, time.time()
    net.train()
    for step, (x, t) in zip(range(args.steps), loader(syn, real, args), strict=False):
        loss, parts = loss_fn(net(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        restore()
        if (step + 1) % args.average_every == 0 or step == args.steps - 1:
            mean.take(net)
        log_step(step, args.steps - 1, parts, running, t0)
    net.load_state_dict(mean.mean)
    net.eval()
    return net, mean.taken


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    torch.set_num_threads(args.threads)
    base_manifest = json.loads((args.base / MANIFEST_NAME).read_text(encoding="utf-8"))
    net = load_released(args.base / MODEL_FILE)
    fingers = training_fingers(args.base)
    args.out.mkdir(parents=True, exist_ok=True)
    net, taken = finetune(net, args, fingers)
    export(net, args.out / MODEL_FILE)
    flips = int(base_manifest.get("flips", 1))
    write_manifest(args.out, 0.5, {}, flips=flips)
    fvc = args.data.is_dir()  # as the trainer: BOZORTH3 scores the fingers where the data is
    thr, stats, chosen = choose_thresholds(args.out, args.cache, real=fvc, fingers=fingers)
    finetune_record = {
        "command": "python -m models.training.finetune " + " ".join(argv or sys.argv[1:]),
        "base_sha256": file_sha256(args.base / MODEL_FILE),
        "steps": args.steps,
        "lr": args.lr,
        "averaged": taken,
        "seed": args.seed,
        "neighbour_offsets": args.neighbour_offsets,
        "attributes_only": args.attributes_only,
        "wall_time_min": round((time.time() - started) / 60, 1),
    }
    training = base_manifest.get("training", {})
    training.update(
        finetune=finetune_record, synthetic_validation_best_f1=stats, threshold_choice=chosen
    )
    parameters = sum(p.numel() for p in net.parameters())
    write_manifest(args.out, thr, {"parameters": parameters, "training": training}, flips=flips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
