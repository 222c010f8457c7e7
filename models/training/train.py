"""Train the minutiae network on the CPU, export it to ONNX and write its manifest.

One command reproduces the shipped model (fixed seeds; 40 to 60 minutes on two cores)::

    nice -n 15 python -m models.training.train --out models/minutiae

Data (cached under ``--cache``, never in the repository): synthetic impressions from
``drivers.synthetic`` with their true minutiae, and FVC2002 set B fingers (``--fingers``,
101..105 unless told) of DB1..DB4 labelled by what the reference extractors agree on: the
MINDTCT consensus and LEADER, weighted by agreement (see :mod:`models.training.labels`). The
detection threshold written to the manifest is the one with the lowest mean BOZORTH3 EER on
those training fingers of DB1..DB3.

``--device cuda --workers N`` trains on a GPU with N processes drawing batches; with two or more
workers every batch is drawn from its own seed (the seed and its number), so the batches are the
same for any such N on any device, and the same command with ``--device cpu`` trains on the same
data. ``--workers 1`` (the default) draws them all from one stream, as every release up to
1.2.0 was trained.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.training.data import (
    DEFAULT_CACHE,
    blank_crop,
    build_fvc,
    build_nist,
    build_synthetic,
    default_data_dir,
    parse_fingers,
    random_crop,
    targets,
    training_sets,
)
from models.training.labels import contour_shares, soften_contour
from models.training.model import MinutiaeNet
from models.training.release import (
    DECODING,
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAMES,
    STRIDE,
    add_top_up_args,
    choose_thresholds,
    write_manifest,
)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The training data's and the batches' options, shared with :mod:`models.training.finetune`."""
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--masters", type=int, default=240, help="synthetic fingers to render")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--real-fraction", type=float, default=0.4)
    p.add_argument(
        "--real-moisture",
        type=float,
        default=0.0,
        help="share of real crops made wetter or drier first (models.training.data.moisten)",
    )
    p.add_argument(
        "--sensors",
        type=float,
        default=0.0,
        help="share of crops whose print first looks as another kind of sensor would have "
        "captured it (models.training.sensors: resolution, sweep, JPEG, banding)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes drawing batches; 2 or more seed each batch on its own (module doc)",
    )
    p.add_argument(
        "--neighbour-offsets",
        type=float,
        default=0.0,
        help="weight of the offset, direction and kind targets in the 8 cells around each "
        "minutia, relative to its own cell (models.training.data.targets)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    repo = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=repo / "models" / "minutiae")
    add_data_args(p)
    p.add_argument("--steps", type=int, default=45000)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the trainer")
    p.add_argument(
        "--fingers",
        type=parse_fingers,
        default=parse_fingers("101-105"),
        help="FVC2002 set B fingers to train on, e.g. 101-105 or 101-110",
    )
    p.add_argument(
        "--leave-out",
        choices=("DB1_B", "DB2_B", "DB3_B", "DB4_B"),
        default=None,
        help="train without this FVC2002 sensor, neither its prints nor its threshold choice "
        "(a leave-one-sensor-out run: benchmarks/minutiae_eval.py --loso measures it there)",
    )
    add_top_up_args(p)  # the threshold is chosen with the manifest's top-up
    p.add_argument("--device", default="cpu", help="torch device: cpu, or cuda on a GPU machine")
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="channels-last convolutions: about a tenth faster on the CPU, other rounding",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--nist",
        action="store_true",
        help="also train on the NIST WSQ reference prints (ink cards, live-scan slaps), "
        "labelled like the FVC prints",
    )
    p.add_argument(
        "--contour-weight",
        type=float,
        default=None,
        help="heat-map target of MINDTCT-only labels near the print's edge (default: theirs, "
        "0.5; see models.training.labels.soften_contour)",
    )
    p.add_argument(
        "--contour-band", type=float, default=16.0, help="pixels from the edge for --contour-weight"
    )
    return p.parse_args(argv)


def batch(samples_syn, samples_real, rng, args) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    images, tgts = [], []
    for _ in range(args.batch):
        u = rng.random()
        if u < 0.04:
            crop, lab = blank_crop(rng, args.crop), np.zeros((0, 5), np.float32)
        else:
            pool = samples_real if (u < 0.04 + args.real_fraction and samples_real) else samples_syn
            crop, lab = random_crop(
                pool[int(rng.integers(len(pool)))],
                rng,
                args.crop,
                args.real_moisture,
                getattr(args, "sensors", 0.0),
            )
        images.append(crop[None])
        tgts.append(targets(lab, args.crop, STRIDE, args.neighbour_offsets))
    x = torch.from_numpy(np.stack(images))
    t = {k: torch.from_numpy(np.stack([g[k] for g in tgts])) for k in tgts[0]}
    return x, t


class Batches(torch.utils.data.IterableDataset):
    """Endless training batches drawn in ``args.workers`` processes, seeded: with one, from
    one stream; with more, batch i from its own seed ``[seed, 1, i]``, worker w drawing
    batches w, w + workers, ... (the loader takes them from the workers in turn, so they
    arrive in order)."""

    def __init__(self, syn, real, args) -> None:
        self.syn, self.real, self.args = syn, real, args

    def __iter__(self):
        torch.set_num_threads(1)
        workers, seed = self.args.workers, self.args.seed
        if workers <= 1:
            rng = np.random.default_rng([seed, 1])
            while True:
                yield batch(self.syn, self.real, rng, self.args)
        else:
            info = torch.utils.data.get_worker_info()
            index = info.id if info is not None else 0
            while True:
                rng = np.random.default_rng([seed, 1, index])
                yield batch(self.syn, self.real, rng, self.args)
                index += workers


def loader(syn, real, args) -> torch.utils.data.DataLoader:
    """The endless batches of :class:`Batches`, pinned for a GPU."""
    return torch.utils.data.DataLoader(
        Batches(syn, real, args),
        batch_size=None,
        num_workers=max(1, args.workers),
        prefetch_factor=4,
        pin_memory=getattr(args, "device", "cpu") != "cpu",  # finetune has no --device
    )


def to_device(x: torch.Tensor, t: dict[str, torch.Tensor], device: str):
    """A batch on ``device`` (unchanged on the CPU)."""
    if device == "cpu":
        return x, t
    return x.to(device, non_blocking=True), {
        k: v.to(device, non_blocking=True) for k, v in t.items()
    }


def loss_fn(outputs, t) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total loss and its parts (detached: reading them waits for the device)."""
    heat, offset, direction, kind = outputs
    pos, attr = t["heat"], t["attr"]
    n_pos = pos.sum().clamp(min=1.0)
    bce = F.binary_cross_entropy_with_logits(heat, pos, reduction="none")
    p = torch.sigmoid(heat)
    focal = bce * ((pos - p).abs() ** 1.5)  # focal-style: easy background cells fade out
    l_heat = 4.0 * focal.sum() / n_pos
    l_off = ((offset - t["offset"]).abs() * attr).sum() / n_pos
    l_dir = ((1.0 - (direction * t["direction"]).sum(1, keepdim=True)) * attr).sum() / n_pos
    l_kind = (F.binary_cross_entropy_with_logits(kind, t["kind"], reduction="none") * attr).sum()
    l_kind = l_kind / n_pos
    total = l_heat + l_off + l_dir + l_kind
    parts = {"heat": l_heat, "off": l_off, "dir": l_dir, "kind": l_kind}
    return total, {k: v.detach() for k, v in parts.items()}


def log_step(step: int, last: int, parts: dict, running: dict, t0: float) -> None:
    """Keep a running mean of the loss parts and print it every 100 steps (the only place
    that reads them back from the device)."""
    for k, v in parts.items():
        running[k] = v if k not in running else 0.98 * running[k] + 0.02 * v
    if step % 100 == 0 or step == last:
        shown = " ".join(f"{k}={float(v):.3f}" for k, v in running.items())
        print(f"step {step} {shown} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)


def train(args) -> MinutiaeNet:
    torch.manual_seed(args.seed)
    syn = build_synthetic(args.cache, args.masters, workers=args.workers)
    real = build_fvc(args.cache, args.data, args.fingers, training_sets(args.leave_out))
    if args.nist and args.data.is_dir():
        real += build_nist(args.cache, args.data)
    if args.contour_weight is not None:
        shares = contour_shares([(r.image, r.labels) for r in real], args.contour_band)
        print(
            f"contour: {shares}; MINDTCT-only ones there get {args.contour_weight:g}",
            file=sys.stderr,
        )
        real = [
            replace(
                r, labels=soften_contour(r.image, r.labels, args.contour_band, args.contour_weight)
            )
            for r in real
        ]
    print(
        f"data: {len(syn)} synthetic, {len(real)} real impressions "
        f"({sum(r.image.size for r in real) / 1e6:.1f} megapixels, "
        f"{sum(len(r.labels) for r in real)} labels)",
        file=sys.stderr,
    )
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    # full float32 on a GPU as on the CPU (Hopper's convolutions would round to TF32)
    torch.backends.cudnn.allow_tf32 = False
    model = MinutiaeNet(args.width).to(args.device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = min(300, args.steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    t0, running = time.time(), {}
    for step, (x, t) in zip(range(args.steps), loader(syn, real, args), strict=False):
        x, t = to_device(x, t, args.device)
        loss, parts = loss_fn(model(x.contiguous(memory_format=fmt)), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        log_step(step, args.steps - 1, parts, running, t0)
    model.eval()
    return model.to("cpu", memory_format=torch.contiguous_format)


def export(model: MinutiaeNet, path: Path) -> None:
    dummy = torch.zeros(1, 1, 128, 160)
    dyn = {0: "N", 2: "H", 3: "W"}
    dyn_out = {0: "N", 2: "H/8", 3: "W/8"}
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: dyn, **{n: dyn_out for n in OUTPUT_NAMES}},
        opset_version=17,
        do_constant_folding=True,
        dynamo=False,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model = train(args)
    export(model, args.out / MODEL_FILE)
    decoding = replace(DECODING, min_minutiae=args.min_minutiae, floor_threshold=args.floor)
    write_manifest(args.out, 0.5, {}, decoding=decoding)
    fvc = args.data.is_dir()  # BOZORTH3 scores the training fingers where the data is
    thr, stats, chosen = choose_thresholds(
        args.out, args.cache, real=fvc, fingers=args.fingers, left_out=args.leave_out
    )
    params = sum(p.numel() for p in model.parameters())
    write_manifest(
        args.out,
        thr,
        {
            "parameters": params,
            "training": {
                "command": "python -m models.training.train " + " ".join(argv or sys.argv[1:]),
                "steps": args.steps,
                "batch": args.batch,
                "crop": args.crop,
                "masters": args.masters,
                "seed": args.seed,
                "fingers": list(args.fingers),
                "left_out": args.leave_out,
                "workers": args.workers,
                "device": args.device,
                "nist": args.nist,
                "contour_weight": args.contour_weight,
                "contour_band": args.contour_band,
                "real_moisture": args.real_moisture,
                "sensors": args.sensors,
                "neighbour_offsets": args.neighbour_offsets,
                "threads": args.threads,
                "wall_time_min": round((time.time() - started) / 60, 1),
                "synthetic_validation_best_f1": stats,
                "threshold_choice": chosen,
            },
        },
        decoding=decoding,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
