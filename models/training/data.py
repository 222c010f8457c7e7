"""Training prints: synthetic impressions with true minutiae and real FVC2002 prints with labels.

Both are cached once as ``.npz`` files under a scratch folder (``/tmp`` by default, never the
repository): building them takes minutes, training reads them many times. Every sample is a
500 ppi uint8 image (dark ridges) and an (N, 5) float array of x, y, angle (radians, ISO
19794-2), kind (0 ending, 1 bifurcation) and weight (the heat-map target: 1 for a true
synthetic minutia, 0.5..1 for a real label by how firmly the references agree).

Real prints: FVC2002 set B, databases DB1..DB4, by default **fingers 101..105 only** (40
images each; ``--fingers`` chooses others); fingers left out of training are reported apart by
the benchmark. DB2 is resampled from 569 to 500 ppi before labelling. Labels are the weighted
union of the MINDTCT consensus and LEADER of :mod:`models.training.labels`. With ``--nist``
the NIST WSQ reference prints join them, labelled the same way (measured worse; see the model
card's ablation table).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from appliance.imaging.resample import resample
from appliance.minutiae.extractor import NORM_FLOOR

#: Where the trainer keeps rendered and labelled prints between runs.
DEFAULT_CACHE = Path("/tmp/booking-station-minutiae")


def default_data_dir() -> Path:
    """``../shared/data`` beside the checkout, or ``$BST_DATA_DIR``."""
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("BST_DATA_DIR", repo.parent / "shared" / "data"))


FVC_PPI = {"DB1_B": 500, "DB2_B": 569, "DB3_B": 500, "DB4_B": 500}
#: The FVC fingers a training uses unless told otherwise (``--fingers``); a manifest without a
#: ``training.fingers`` record was trained on these.
TRAIN_FINGERS = range(101, 106)
#: Every finger of an FVC2002 set B.
ALL_FINGERS = range(101, 111)
#: Sub-folder of the cache holding the labelled real prints (named after the label scheme, so
#: that a cache of another scheme is never read as this one).
FVC_CACHE = "fvc-ref"
#: NIST WSQ certification reference images (``--nist``): ink cards (four-finger slaps, thumbs,
#: rolled prints) and live-scan thumb slaps, all 500 ppi. The two test patterns (a blank white
#: and a black page) hold no print and are left out.
NIST_FOLDER = "nist_wsq_reference/input"
NIST_TEST_PATTERNS = frozenset({"cmp00018", "cmp00019"})
NIST_CACHE = "nist-ref"


def training_sets(left_out: str | None) -> tuple[str, ...]:
    """The FVC2002 sets a training reads: all four, or all but the sensor ``left_out`` (a
    leave-one-sensor-out run, which then measures the model on that sensor alone)."""
    if left_out is not None and left_out not in FVC_PPI:
        raise ValueError(f"left-out set {left_out!r}: one of {', '.join(FVC_PPI)}")
    return tuple(db for db in FVC_PPI if db != left_out)


def parse_fingers(text: str) -> tuple[int, ...]:
    """``"101-105"`` or ``"101,103,106-110"`` as a sorted tuple of finger numbers."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        first, last = int(lo), int(hi or lo)
        if not (ALL_FINGERS.start <= first <= last < ALL_FINGERS.stop):
            raise ValueError(f"fingers {part!r}: FVC2002 set B has fingers 101..110")
        out.update(range(first, last + 1))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Sample:
    """One training print."""

    image: np.ndarray
    labels: np.ndarray
    real: bool

    @property
    def hist(self) -> np.ndarray:
        """Grey-level histogram (256 bins), computed once."""
        cached = self.__dict__.get("_hist")
        if cached is None:
            cached = np.bincount(self.image.ravel(), minlength=256).astype(np.float64)
            object.__setattr__(self, "_hist", cached)
        return cached


def _save(path: Path, image: np.ndarray, labels: np.ndarray) -> None:
    np.savez_compressed(path, image=image, labels=labels.astype(np.float32))


def _load(path: Path, real: bool) -> Sample:
    with np.load(path) as z:
        image, labels = z["image"], z["labels"]
    if labels.shape[1] == 4:  # a cache written before labels had a weight: all firm
        labels = np.concatenate([labels, np.ones((len(labels), 1), np.float32)], axis=1)
    return Sample(image=image, labels=labels, real=real)


def synthetic_labels(minutiae) -> np.ndarray:
    """(N, 5) label array of a synthetic impression's true minutiae (weight 1)."""
    rows = [(m.x, m.y, m.angle, 0.0 if m.kind.value == "E" else 1.0, 1.0) for m in minutiae]
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def build_synthetic(
    cache: Path, masters: int, seed: int = 20240, workers: int = 1
) -> list[Sample]:
    """Impressions of ``masters`` synthetic fingers: three flat presses each, every fourth rolled.

    Quality is drawn in [0.25, 1], moisture in [-0.8, 0.8]; everything follows from ``seed``
    and the finger's number, so ``workers`` processes render the same prints as one.
    """
    folder = cache / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(masters) if not _synthetic_names(folder, seed, i)[0].exists()]
    if workers > 1 and missing:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_render_master, [folder] * len(missing), [seed] * len(missing),
                          missing, chunksize=4))
    else:
        for i in missing:
            _render_master(folder, seed, i)
    out = []
    for i in range(masters):
        out.extend(_load(n, real=False) for n in _synthetic_names(folder, seed, i) if n.exists())
    return out


def _synthetic_names(folder: Path, seed: int, i: int) -> list[Path]:
    return [folder / f"m{seed + i}_{k}.npz" for k in range(4)]


def _render_master(folder: Path, seed: int, i: int) -> None:
    """Render synthetic finger ``i``'s impressions (the rolled one only for every fourth);
    the first is written last, so it marks the finger as complete."""
    from drivers.synthetic import generate_master

    names = _synthetic_names(folder, seed, i)
    master = generate_master(seed + i)
    rng = np.random.default_rng([seed, i])
    rendered = []
    for k in range(4):
        if k == 3 and i % 4:
            continue
        imp = master.impression(
            rng,
            rolled=(k == 3),
            quality=float(rng.uniform(0.25, 1.0)),
            moisture=float(np.clip(rng.normal(0.0, 0.4), -0.8, 0.8)),
        )
        rendered.append((names[k], imp.image, synthetic_labels(imp.minutiae)))
    for name, image, labels in rendered[1:] + rendered[:1]:
        _save(name, image, labels)
    generate_master.cache_clear()
    if i % 20 == 0:
        print(f"synthetic {i}", file=sys.stderr, flush=True)


def load_fvc(path: Path, db: str, ppi: int | None = None) -> np.ndarray:
    """An FVC2002 image of set ``db`` as uint8 at 500 ppi, resampled from ``ppi`` (default: the
    set's published resolution, :data:`FVC_PPI`)."""
    image = np.asarray(Image.open(path).convert("L"))
    return resample(image, FVC_PPI[db] if ppi is None else ppi)


def build_fvc(
    cache: Path, data_dir: Path, fingers=TRAIN_FINGERS, sets=tuple(FVC_PPI)
) -> list[Sample]:
    """FVC2002 set B prints of ``fingers`` from ``sets`` (DB1..DB4 unless told) with reference
    labels: read from ``cache`` where they were labelled before (the source images need not be
    there then), else labelled from ``data_dir``; prints in neither are left out."""
    folder = cache / FVC_CACHE
    folder.mkdir(parents=True, exist_ok=True)
    label = _Labeller()
    out = []
    for db in sets:
        for finger in fingers:
            for imp in range(1, 9):
                src = data_dir / "fvc2002" / db / f"{finger}_{imp}.tif"
                dst = folder / f"{db}_{finger}_{imp}.npz"
                if not dst.exists():
                    if not src.exists():
                        continue
                    image = load_fvc(src, db)
                    _save(dst, image, label(image))
                out.append(_load(dst, real=True))
    return out


class _Labeller:
    """Reference labels of real prints; MINDTCT and LEADER are loaded on the first print that
    is not cached yet, so a warm cache never loads them."""

    def __init__(self) -> None:
        self._extractor = self._leader = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from models.training.labels import Leader, reference_labels
        from models.training.verification import matcher

        self._extractor = self._extractor or matcher()
        self._leader = self._leader or Leader()
        return reference_labels(image, self._extractor, self._leader)


def build_nist(cache: Path, data_dir: Path) -> list[Sample]:
    """The NIST WSQ reference prints (grey, 500 ppi) with the same reference labels as FVC.

    These are not scored by the benchmark, so all of them can be trained on. Card text and
    ruling are labelled like the rest: whatever the references find there is taught.
    """
    folder = cache / NIST_CACHE
    folder.mkdir(parents=True, exist_ok=True)
    label = _Labeller()
    out = []
    for src in sorted((data_dir / NIST_FOLDER).glob("*.webp")):
        if src.stem in NIST_TEST_PATTERNS:
            continue
        dst = folder / f"{src.stem}.npz"
        if not dst.exists():
            image = np.asarray(Image.open(src).convert("L"))
            _save(dst, image, label(image))
            print(f"nist {src.stem}", file=sys.stderr, flush=True)
        out.append(_load(dst, real=True))
    return out


# --- augmentation -------------------------------------------------------------------------


def _flip_labels(labels: np.ndarray, w: int, h: int, fx: bool, fy: bool, tr: bool) -> np.ndarray:
    """Labels of an image flipped left-right (fx), up-down (fy), then transposed (tr)."""
    out = labels.copy()
    dx, drow = np.cos(out[:, 2]), -np.sin(out[:, 2])  # the direction in (x, row) pixels
    if fx:
        out[:, 0] = w - 1 - out[:, 0]
        dx = -dx
    if fy:
        out[:, 1] = h - 1 - out[:, 1]
        drow = -drow
    if tr:
        out[:, [0, 1]] = out[:, [1, 0]]
        dx, drow = drow, dx
    out[:, 2] = np.arctan2(-drow, dx) % (2 * math.pi)
    return out


def _stats(sample: Sample, lut: np.ndarray) -> tuple[float, float]:
    """Mean and spread of the whole print after a grey-level LUT, from its histogram."""
    hist = sample.hist
    n = float(hist.sum())
    mean = float((hist * lut).sum()) / n
    var = float((hist * (lut - mean) ** 2).sum()) / n
    return mean, max(math.sqrt(var), NORM_FLOOR)


def moisten(image: np.ndarray, wet: bool, strength: float) -> np.ndarray:
    """A real print made wetter (dark ridges spread into the valleys: a 3 x 3 grey minimum) or
    drier (ridges thin and break up: a 3 x 3 grey maximum), blended with the original by
    ``strength`` in [0, 1]. The minutiae stay where they were: the model is taught to find
    them through the finger's moisture, as the synthetic impressions' moisture already does.
    """
    kind = ImageFilter.MinFilter(3) if wet else ImageFilter.MaxFilter(3)
    filtered = np.asarray(Image.fromarray(image).filter(kind), dtype=np.float32)
    out = image.astype(np.float32) * (1.0 - strength) + filtered * strength
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_crop(
    sample: Sample,
    rng: np.random.Generator,
    size: int,
    moisture: float = 0.0,
    sensors: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` normalised crop and its labels, randomly scaled, flipped, toned.

    The crop is normalised with the statistics of the whole print, as the runtime normalises
    whole images; beyond the print's edge it is 0, as the runtime's padding is. With
    ``moisture`` > 0, a real print is first made wetter or drier (:func:`moisten`) with that
    probability; at 0 no random number is drawn for it, so the default recipe's crops stay
    exactly those of the shipped model's run. ``sensors`` is the probability that the print
    (real or synthetic) is first made to look as another kind of sensor would have captured it
    (:mod:`models.training.sensors`), with the same guarantee at 0.
    """
    image, labels = sample.image, sample.labels
    if moisture > 0 and sample.real and rng.random() < moisture:
        image = moisten(image, wet=bool(rng.random() < 0.5), strength=float(rng.uniform(0.4, 1.0)))
        sample = Sample(image=image, labels=labels, real=True)
    if sensors > 0 and rng.random() < sensors:
        from models.training.sensors import imitate

        image, labels = imitate(image, labels, rng)
        sample = Sample(image=image, labels=labels, real=sample.real)
    h, w = image.shape
    scale = float(rng.uniform(0.9, 1.1)) if rng.random() < 0.7 else 1.0
    src = max(8, int(round(size / scale)))
    gamma = float(np.exp(rng.normal(0.0, 0.3))) if rng.random() < 0.5 else 1.0
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.float32)
    mean, std = _stats(sample, lut)
    x0 = int(rng.integers(-src // 4, max(1, w - src + src // 4)))
    y0 = int(rng.integers(-src // 4, max(1, h - src + src // 4)))
    window = np.zeros((src, src), dtype=np.float32)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + src), min(h, y0 + src)
    if sx1 > sx0 and sy1 > sy0:
        part = lut[image[sy0:sy1, sx0:sx1]]
        window[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = (part - mean) / std
    if src != size:
        window = np.asarray(
            Image.fromarray(window, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        )
    lab = labels.copy()
    lab[:, 0] = (lab[:, 0] - x0 + 0.5) * size / src - 0.5
    lab[:, 1] = (lab[:, 1] - y0 + 0.5) * size / src - 0.5
    inside = (lab[:, 0] >= 0) & (lab[:, 0] < size) & (lab[:, 1] >= 0) & (lab[:, 1] < size)
    lab = lab[inside]
    fx, fy, tr = (bool(b) for b in rng.random(3) < 0.5)
    crop = window
    if fx:
        crop = crop[:, ::-1]
    if fy:
        crop = crop[::-1, :]
    if tr:
        crop = crop.T
    lab = _flip_labels(lab, size, size, fx, fy, tr)
    if rng.random() < 0.3:
        crop = crop + rng.normal(0.0, rng.uniform(0.05, 0.4), crop.shape).astype(np.float32)
    return np.ascontiguousarray(crop, dtype=np.float32), lab


def blank_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A crop with no print in it: flat, noise, a gradient or smooth blobs (no minutiae)."""
    kind = int(rng.integers(4))
    if kind == 0:
        return np.zeros((size, size), dtype=np.float32)
    if kind == 1:
        return rng.normal(0.0, 1.0, (size, size)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 2:
        a = rng.uniform(0, 2 * math.pi)
        g = np.cos(a) * xx + np.sin(a) * yy
        return ((g - g.mean()) / (g.std() + 1e-6)).astype(np.float32)
    small = rng.normal(0.0, 1.0, (size // 16 + 2, size // 16 + 2)).astype(np.float32)
    big = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
    return ((big - big.mean()) / (big.std() + 1e-6)).astype(np.float32)


def targets(
    labels: np.ndarray, size: int, stride: int, neighbours: float = 0.0
) -> dict[str, np.ndarray]:
    """Per-cell targets: heat (the label's weight in a minutia's cell), offsets in [0, 1), cos,
    sin, kind, and ``attr``, the weight of the offset, direction and kind targets in each cell.

    ``attr`` is the heat target in a minutia's own cell. With ``neighbours`` > 0 the 8 cells
    around it (those holding no minutia of their own) also learn to describe that minutia, at
    ``neighbours`` times its weight: its direction and kind, and as offset the point of their own
    cell nearest to it. Their heat target stays 0; but where the heat map still fires there,
    the detection then lands beside the true one (offsets are bounded to the cell), within the
    runtime's merge distance, instead of a cell's width away as a second minutia.
    """
    n = size // stride
    heat = np.zeros((1, n, n), dtype=np.float32)
    offset = np.zeros((2, n, n), dtype=np.float32)
    direction = np.zeros((2, n, n), dtype=np.float32)
    kind = np.zeros((1, n, n), dtype=np.float32)
    attr = np.zeros((1, n, n), dtype=np.float32)
    order = labels[np.argsort(labels[:, 4], kind="stable")]
    if neighbours > 0:
        # A neighbour cell describes the nearest of the minutiae around it; own cells overwrite.
        near = np.full((n, n), np.inf, dtype=np.float32)
        for x, y, a, k, wgt in order:
            fx, fy = (x + 0.5) / stride, (y + 0.5) / stride
            cx, cy = int(x // stride), int(y // stride)
            for ny in range(cy - 1, cy + 2):
                for nx in range(cx - 1, cx + 2):
                    if (nx, ny) == (cx, cy) or not (0 <= nx < n and 0 <= ny < n):
                        continue
                    ox = min(max(fx - nx, 0.02), 0.98)
                    oy = min(max(fy - ny, 0.02), 0.98)
                    dist = math.hypot(fx - nx - ox, fy - ny - oy)
                    if dist >= near[ny, nx]:
                        continue
                    near[ny, nx] = dist
                    attr[0, ny, nx] = neighbours * wgt
                    offset[:, ny, nx] = (ox, oy)
                    direction[:, ny, nx] = (math.cos(a), math.sin(a))
                    kind[0, ny, nx] = k
    for x, y, a, k, wgt in order:
        cx, cy = int(x // stride), int(y // stride)
        if not (0 <= cx < n and 0 <= cy < n):
            continue
        heat[0, cy, cx] = wgt
        attr[0, cy, cx] = wgt
        offset[:, cy, cx] = ((x + 0.5) / stride - cx, (y + 0.5) / stride - cy)
        direction[:, cy, cx] = (math.cos(a), math.sin(a))
        kind[0, cy, cx] = k
    return {"heat": heat, "offset": offset, "direction": direction, "kind": kind, "attr": attr}
