"""Verification with BOZORTH3 through the nbis binding: templates, the binding's layout, rates.

Shared by the training (threshold choice on the training fingers) and the benchmark.
"""

from __future__ import annotations

import numpy as np

from appliance.records.template import encode_iso19794_2

#: BOZORTH3's own limit: it keeps the best 150 minutiae of a template.
MAX_MINUTIAE = 150


def template(found: np.ndarray, image: np.ndarray) -> bytes:
    """ISO/IEC 19794-2 record of the best 150 minutiae by quality, ordered by x then y.

    BOZORTH3 walks its minutiae assuming this order (it stops searching neighbours once x is
    too far); the same minutiae in quality order score far lower (61 against 38 on a DB1 pair).
    """
    from appliance.domain import Minutia, MinutiaType

    h, w = image.shape
    best = found[np.argsort(-found[:, 4], kind="stable")][:MAX_MINUTIAE]
    xi = np.clip(np.round(best[:, 0]), 0, w - 1)
    yi = np.clip(np.round(best[:, 1]), 0, h - 1)
    order = np.lexsort((yi, xi))
    minutiae = [
        Minutia(
            x=float(xi[i]),
            y=float(yi[i]),
            angle=float(best[i, 2]),
            kind=MinutiaType.ENDING if best[i, 3] == 0 else MinutiaType.BIFURCATION,
            quality=int(np.clip(best[i, 4], 1, 100)),
        )
        for i in order
    ]
    return encode_iso19794_2(
        minutiae, width=w, height=h, ppi=500, position=0, impression_type=0, finger_quality=60
    )


def nbis_layout(iso: bytes) -> bytes:
    """A one-view ISO/IEC 19794-2:2005 record in the byte layout the nbis binding's loader reads.

    The binding (nbis-py 0.1.3) writes and reads a variant without the header's "number of
    finger views" and reserved bytes (offsets 22-23) and without the trailing extended-data
    length; fed a standard record it reads the view count as the finger position and finds no
    minutiae (every score 0). Checked: MINDTCT's own template and ours agree byte for byte in
    the minutiae and score the same.
    """
    body = iso[:22] + iso[24:-2]
    return body[:8] + len(body).to_bytes(4, "big") + body[12:]


def rates(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """EER and FNMR at FMR <= 1 % (scores: higher is more similar; accept when >= t)."""
    fnmr, fmr = _error_curves(genuine, np.ones(len(genuine)), impostor, np.ones(len(impostor)))
    ok = fmr <= 0.01
    fnmr_at = float(fnmr[ok].min()) if ok.any() else 1.0
    return _eer(fnmr, fmr), fnmr_at


def _error_curves(
    genuine: np.ndarray, g_weight: np.ndarray, impostor: np.ndarray, i_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FNMR and FMR at every distinct score (and above all of them), each score counted
    ``weight`` times: FNMR(t) is the weight of genuine scores below t, FMR(t) that of impostor
    scores at or above t, each over its total."""
    thresholds = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    go, io = np.argsort(genuine, kind="stable"), np.argsort(impostor, kind="stable")
    gw = np.concatenate([[0.0], np.cumsum(g_weight[go])])
    iw = np.concatenate([[0.0], np.cumsum(i_weight[io])])
    below_g = gw[np.searchsorted(genuine[go], thresholds, side="left")]
    below_i = iw[np.searchsorted(impostor[io], thresholds, side="left")]
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty side gives NaN, as a mean
        return below_g / gw[-1], (iw[-1] - below_i) / iw[-1]


def _eer(fnmr: np.ndarray, fmr: np.ndarray) -> float:
    i = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[i] + fmr[i]) / 2)


def matcher():
    """The nbis binding's extractor object (the station's own, from
    :meth:`appliance.imaging.nfiq2.Backend.new_extractor`): its MINDTCT labels and benchmarks
    the prints, its ISO loader and BOZORTH3 give the scores."""
    from appliance.imaging.nfiq2 import load_backend

    return load_backend().new_extractor(nfiq2=False)


def load(bozorth, found: np.ndarray, shape: tuple[int, int]):
    """The binding's template object of ``found`` minutiae, or None when there are none."""
    if not len(found):
        return None
    return bozorth.load_iso_19794_2_2005(nbis_layout(template(found, np.empty(shape))))


def score(a, b) -> int:
    """BOZORTH3 score of two loaded templates; 0 when either has no minutiae."""
    return 0 if a is None or b is None else int(a.compare(b))


def eer_of(found: dict[tuple[int, int], np.ndarray], shapes: dict, bozorth=None) -> float:
    """EER over all genuine and all impostor pairs of ``found`` ((finger, impression) -> minutiae
    as (N, 5) x, y, angle, kind, quality), images of ``shapes`` ((finger, impression) -> (h, w))."""
    bozorth = bozorth or matcher()
    keys = sorted(found)
    loaded = {k: load(bozorth, found[k], shapes[k]) for k in keys}
    gen, imp = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            (gen if a[0] == b[0] else imp).append(score(loaded[a], loaded[b]))
    return rates(np.array(gen), np.array(imp))[0]


def weighted_rates(
    genuine: np.ndarray, g_weight: np.ndarray, impostor: np.ndarray, i_weight: np.ndarray
) -> float:
    """EER as :func:`rates` computes it, with each score counted ``weight`` times.

    With all weights 1 this is :func:`rates`'s EER; the finger bootstrap uses the weights for
    fingers drawn more than once (or not at all).
    """
    return _eer(*_error_curves(genuine, g_weight, impostor, i_weight))


def finger_bootstrap(
    fingers: np.ndarray, scores: dict[str, np.ndarray], reps: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """EERs of ``reps`` resamples of the fingers, drawn with replacement (Bolle's "subsets
    bootstrap": the pairs of one finger are not independent, the fingers are).

    ``fingers`` is (P, 2): the two fingers of each compared pair (equal for a genuine pair);
    ``scores`` maps an extractor's name to its P scores of those pairs. A finger drawn k times
    counts its genuine pairs k times and an impostor pair of fingers a, b k_a * k_b times; two
    draws of the same finger are never compared as impostors. Every extractor is scored on the
    same resamples, so differences between them can be read replicate by replicate. Returns,
    per extractor, the ``reps`` EERs.
    """
    fingers = np.asarray(fingers)
    ids, inverse = np.unique(fingers, return_inverse=True)
    inverse = inverse.reshape(fingers.shape)
    genuine = fingers[:, 0] == fingers[:, 1]
    rng = np.random.default_rng(seed)
    out = {name: np.empty(reps) for name in scores}
    for r in range(reps):
        count = np.bincount(rng.integers(len(ids), size=len(ids)), minlength=len(ids))
        ca, cb = count[inverse[:, 0]].astype(np.float64), count[inverse[:, 1]]
        weight = np.where(genuine, ca, ca * cb)
        gw, iw = weight[genuine], weight[~genuine]
        for name, s in scores.items():
            out[name][r] = weighted_rates(s[genuine], gw, s[~genuine], iw)
    return out
