"""Join trained minutiae models into one ONNX file that averages their output maps.

    python -m models.training.ensemble MEMBER_DIR MEMBER_DIR ... --out models/minutiae

Each member is a folder written by :mod:`models.training.train` (``minutiae.onnx`` and its
manifest). The joined graph feeds the one ``image`` input to every member and outputs the
members' mean maps under the same names and shapes, so the runtime needs no change: ``heat``
and ``kind`` are the mean logits, ``offset`` the mean cell offsets, ``direction`` the mean
direction vectors made unit length again. The manifest gets ``flips`` (mirror images the runtime
averages on top, default 2: the members' runs replace mirrored runs, at the same cost as one
member with 4) and the threshold chosen as :func:`models.training.release.choose_thresholds`
chooses it, on the training fingers only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from models.training.data import DEFAULT_CACHE
from models.training.release import (
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAMES,
    choose_thresholds,
    write_manifest,
)

DIRECTION = "direction"


def join(members: list[Path], out: Path) -> None:
    """Write the ONNX model averaging the ``members`` (ONNX files of one input/output spec)."""
    import onnx
    from onnx import TensorProto, compose, helper

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    first = onnx.load(str(members[0]))
    nodes, initializers = [], []
    for i, path in enumerate(members):
        member = compose.add_prefix(onnx.load(str(path)), f"m{i}/")
        graph = member.graph
        for node in graph.node:
            node.input[:] = [INPUT_NAME if n == f"m{i}/{INPUT_NAME}" else n for n in node.input]
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
    initializers.append(
        helper.make_tensor("ensemble/scale", TensorProto.FLOAT, [], [1.0 / len(members)])
    )
    initializers.append(helper.make_tensor("ensemble/eps", TensorProto.FLOAT, [], [1e-9]))
    for name in OUTPUT_NAMES:
        total = f"m0/{name}"
        for i in range(1, len(members)):
            nodes.append(helper.make_node("Add", [total, f"m{i}/{name}"], [f"ensemble/{name}+{i}"]))
            total = f"ensemble/{name}+{i}"
        if name != DIRECTION:
            nodes.append(helper.make_node("Mul", [total, "ensemble/scale"], [name]))
            continue
        # the sum of unit vectors, scaled back to unit length (the scale cancels out)
        nodes += [
            helper.make_node("ReduceSumSquare", [total], ["ensemble/dir_sq"], axes=[1], keepdims=1),
            helper.make_node("Sqrt", ["ensemble/dir_sq"], ["ensemble/dir_norm"]),
            helper.make_node("Add", ["ensemble/dir_norm", "ensemble/eps"], ["ensemble/dir_den"]),
            helper.make_node("Div", [total, "ensemble/dir_den"], [name]),
        ]
    graph = helper.make_graph(
        nodes,
        "minutiae_ensemble",
        list(first.graph.input),
        list(first.graph.output),
        initializers,
    )
    model = helper.make_model(graph, opset_imports=list(first.opset_import))
    model.ir_version = first.ir_version
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(out))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    repo = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("members", nargs="+", type=Path, help="model folders written by train")
    p.add_argument("--out", type=Path, default=repo / "models" / "minutiae")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--flips", type=int, choices=(1, 2, 4), default=2)
    return p.parse_args(argv)


def build(
    members: list[Path], out: Path, cache: Path, flips: int, command: str, started: float
) -> None:
    """Join the ``members`` into ``out`` and write its manifest with a threshold of its own."""
    manifests = [json.loads((m / "manifest.json").read_text(encoding="utf-8")) for m in members]
    out.mkdir(parents=True, exist_ok=True)
    join([m / MODEL_FILE for m in members], out / MODEL_FILE)
    write_manifest(out, 0.5, {}, flips=flips)
    thr, stats, chosen = choose_thresholds(out, cache)
    summary = [
        {
            "sha256": m["sha256"],
            "parameters": m.get("parameters"),
            "threshold_alone": m["threshold"],
            "training": m.get("training", {}),
        }
        for m in manifests
    ]
    write_manifest(
        out,
        thr,
        {
            "parameters": sum(m["parameters"] or 0 for m in summary),
            "ensemble": {
                "command": command,
                "members": summary,
                "synthetic_validation_best_f1": stats,
                "threshold_choice": chosen,
                "wall_time_min": round((time.time() - started) / 60, 1),
            },
        },
        flips=flips,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m models.training.ensemble " + " ".join(argv or sys.argv[1:])
    build(args.members, args.out, args.cache, args.flips, command, time.time())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
