"""Sequence and duplicate checks: were the rolled prints taken from the right fingers.

Each rolled print is matched against every finger cut from the slaps (the slaps come first in
the capture sequence for this reason). A rolled print whose best match is another finger is out
of sequence (the subject rolled the wrong finger, or the officer skipped one); one that matches
nothing cannot be confirmed. The same finger captured under two positions is a duplicate.

Minutiae come from a pluggable extractor: any callable taking (image, ppi) and returning
:class:`appliance.domain.Minutia` objects (in that image's pixels) or template bytes the matcher
reads. The default is NIST's MINDTCT; matching is NIST's BOZORTH3, both through the NBIS binding
(see :mod:`appliance.imaging.nfiq2`). The matcher reads templates in the binding's own
ISO/IEC 19794-2:2005-style layout (a 26-byte header, then 6 bytes per minutia), so minutiae from
any extractor are serialised to it here. BOZORTH3 scores 0 for a template with fewer than 15
minutiae; such prints are reported as not checkable rather than as mismatches.
"""

from __future__ import annotations

import enum
import itertools
import math
import struct
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.domain import Minutia, MinutiaType, Position
from appliance.imaging.errors import MatcherUnavailable, QualityBackendUnavailable, TemplateError
from appliance.imaging.nfiq2 import Backend, encode_png, load_backend
from appliance.imaging.resample import NATIVE_PPI, as_gray_u8, resample

#: What a minutiae extractor returns: minutiae in the image's pixels, or a template.
Extracted = Sequence[Minutia] | bytes
MinutiaeExtractor = Callable[[np.ndarray, float], Extracted]

#: BOZORTH3 score from which two prints count as the same finger. NIST suggests about 40 for
#: a match; rolled-against-plain comparisons on FVC2002 and the synthetic hands are measured
#: in docs/quality.md.
MATCH_THRESHOLD = 40
#: BOZORTH3 score from which two positions of one booking count as the same finger. Higher
#: than MATCH_THRESHOLD: rolled prints hold 80..140 minutiae, so chance scores between two
#: different rolled fingers reach the 30s and 40s, while the same finger rolled twice scores
#: 200 and more (synthetic hands; docs/quality.md).
DUPLICATE_THRESHOLD = 60
#: BOZORTH3 scores templates with fewer minutiae than this as 0 against everything.
MIN_MINUTIAE = 15
#: BOZORTH3 compares at most this many minutiae per print (the best by quality).
BOZORTH_MAX_MINUTIAE = 150
_HEADER = b"FMR\x00 20\x00"


class NbisMinutiae:
    """MINDTCT minutiae through the NBIS binding (the default extractor); build it once."""

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend or load_backend()
        self._extractor = self.backend.new_extractor(nfiq2=False)
        self._errors = self.backend.errors()
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray, ppi: float = NATIVE_PPI) -> list[Minutia]:
        """Minutiae of ``image`` in its own pixels; an unreadable image gives none."""
        gray = as_gray_u8(image)
        if gray is None or min(gray.shape) < 32:
            return []
        native = resample(gray, ppi)
        back = float(ppi) / NATIVE_PPI  # 500 ppi pixels -> the caller's pixels
        with self._lock:
            try:
                found = self._extractor.extract_minutiae(encode_png(native)).get()
            except self._errors:
                return []
        return [
            Minutia(
                x=m.x() * back,
                y=m.y() * back,
                angle=math.radians(m.angle()),
                kind=MinutiaType.BIFURCATION
                if m.kind().name == "BIFURCATION"
                else MinutiaType.ENDING,
                quality=int(round(100 * max(0.0, min(1.0, m.reliability())))),
            )
            for m in found
        ]


def encode_template(minutiae: Sequence[Minutia], width: int, height: int) -> bytes:
    """Minutiae (500 ppi pixels) in the layout the binding's BOZORTH3 loader reads.

    Header: ``FMR`` NUL `` 20`` NUL, total length (4 bytes), 2 zero bytes, width and height (2 bytes
    each), finger position, view/impression, quality, 4 reserved bytes, minutia count. Each
    minutia: type (2 bits: 01 ending, 10 bifurcation) and x (14 bits), y (16 bits), angle in
    1.40625 degree units counter-clockwise from +x on screen, quality 0..63. At most the 150
    best minutiae, in x-then-y order. Not a conforming ISO/IEC 19794-2 record; the
    transaction's templates come from the records layer.
    """
    # BOZORTH3 keeps the best 150 and, as in NBIS, wants them in x-then-y order: the binding
    # passes them on as stored, and another order changes the scores (61 vs 38 on one pair).
    best = sorted(minutiae, key=lambda m: m.quality, reverse=True)[:BOZORTH_MAX_MINUTIAE]
    chosen = sorted(best, key=lambda m: (round(m.x), round(m.y)))
    body = bytearray()
    for m in chosen:
        x = int(np.clip(round(m.x), 0, 0x3FFF))
        y = int(np.clip(round(m.y), 0, 0xFFFF))
        kind = 0x80 if m.kind is MinutiaType.BIFURCATION else 0x40
        angle = int(round(m.angle_deg / (360.0 / 256.0))) % 256
        quality = int(np.clip(round(m.quality * 63 / 100), 0, 63))
        body += struct.pack(">HHBB", (kind << 8) | x, y, angle, quality)
    header_len = 26
    header = (
        _HEADER
        + struct.pack(">I", header_len + len(body))
        + b"\x00\x00"
        + struct.pack(">HH", min(width, 0xFFFF), min(height, 0xFFFF))
        + bytes((0, 0, 0))  # finger position, view/impression, quality: unknown
        + b"\x00\x00\x00\x00"
        + bytes((len(chosen),))
    )
    return bytes(header) + bytes(body)


class Bozorth3:
    """BOZORTH3 scores between templates, through the NBIS binding."""

    def __init__(self, backend: Backend | None = None) -> None:
        try:
            self.backend = backend or load_backend()
            self._loader = self.backend.new_extractor(nfiq2=False)
        except QualityBackendUnavailable as exc:
            raise MatcherUnavailable(f"BOZORTH3 is unavailable: {exc}") from exc
        self._errors = self.backend.errors()
        self._lock = threading.Lock()

    def load(self, template: bytes) -> Any:
        """The binding's minutiae set for ``template``; raises :class:`TemplateError`."""
        with self._lock:
            try:
                return self._loader.load_iso_19794_2_2005(template)
            except self._errors as exc:
                raise TemplateError(f"the matcher cannot read a template: {exc!r}") from exc

    def score(self, a: Any, b: Any) -> int:
        """BOZORTH3 score of two loaded templates (symmetric; 0 = nothing in common)."""
        with self._lock:
            return int(a.compare(b))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One print prepared for matching: its loaded template and minutia count."""

    position: Position
    template: bytes
    minutiae: int
    handle: Any = field(repr=False, compare=False)

    @property
    def comparable(self) -> bool:
        """False when BOZORTH3 would score it 0 against everything."""
        return self.minutiae >= MIN_MINUTIAE


def prepare(
    images: Mapping[Position, np.ndarray],
    ppi: float,
    extractor: MinutiaeExtractor,
    matcher: Bozorth3,
) -> dict[Position, Fingerprint]:
    """Extract and load a template for each image."""
    prints: dict[Position, Fingerprint] = {}
    for position, image in images.items():
        extracted = extractor(image, ppi)
        if isinstance(extracted, bytes | bytearray):
            template = bytes(extracted)
            count = template[25] if len(template) > 25 else 0
        else:
            scale = NATIVE_PPI / float(ppi)
            native = [
                Minutia(m.x * scale, m.y * scale, m.angle, m.kind, m.quality) for m in extracted
            ]
            h, w = image.shape[:2]
            template = encode_template(native, round(w * scale), round(h * scale))
            count = min(len(native), BOZORTH_MAX_MINUTIAE)
        # BOZORTH3 scores 0 below MIN_MINUTIAE anyway (and the binding refuses empty ones).
        handle = matcher.load(template) if count >= MIN_MINUTIAE else None
        prints[position] = Fingerprint(position, template, count, handle)
    return prints


class SequenceStatus(enum.StrEnum):
    """Outcome of the sequence check for one rolled print."""

    MATCHED = "matched"  # matches its own finger in the slap best
    OUT_OF_SEQUENCE = "out_of_sequence"  # matches another finger of the slaps better
    NO_MATCH = "no_match"  # matches no finger of the slaps
    NOT_CHECKED = "not_checked"  # too few minutiae, or no slap print of this finger


@dataclass(frozen=True, slots=True)
class SequenceResult:
    """The sequence check of one rolled print."""

    position: Position
    matched_position: Position | None
    score: int  # BOZORTH3 score against matched_position (or its own finger)
    ok: bool
    reason: str
    status: SequenceStatus
    own_score: int | None = None  # against the slap print of the same position


@dataclass(slots=True)
class SequenceReport:
    """Per rolled position, whether it came from the finger it is filed under."""

    results: dict[Position, SequenceResult]
    threshold: int
    scores: dict[tuple[Position, Position], int] = field(default_factory=dict)  # (rolled, slap)

    @property
    def ok(self) -> bool:
        """True when no rolled print is out of sequence or unmatched."""
        return all(r.ok for r in self.results.values())

    @property
    def flagged(self) -> list[Position]:
        """Rolled positions the officer must look at."""
        return [p for p, r in self.results.items() if not r.ok]


def check_sequence(
    rolled: Mapping[Position, np.ndarray],
    slap_fingers: Mapping[Position, np.ndarray],
    ppi: float = NATIVE_PPI,
    *,
    extractor: MinutiaeExtractor | None = None,
    matcher: Bozorth3 | None = None,
    threshold: int = MATCH_THRESHOLD,
) -> SequenceReport:
    """Match each rolled print against the fingers cut from the slaps (positions 1..10).

    Both mappings hold uint8 images at ``ppi``. The extractor and matcher are slow to build;
    pass long-lived ones (the station builds them once at start-up).
    """
    matcher = matcher or Bozorth3()
    extractor = extractor or NbisMinutiae(matcher.backend)
    probes = prepare(rolled, ppi, extractor, matcher)
    gallery = prepare(slap_fingers, ppi, extractor, matcher)
    scores = {
        (r, s): matcher.score(probes[r].handle, gallery[s].handle)
        for r in probes
        for s in gallery
        if probes[r].comparable and gallery[s].comparable
    }
    results = {r: _judge(r, probes[r], gallery, scores, threshold) for r in probes}
    return SequenceReport(results=results, threshold=threshold, scores=scores)


def _judge(
    position: Position,
    probe: Fingerprint,
    gallery: Mapping[Position, Fingerprint],
    scores: Mapping[tuple[Position, Position], int],
    threshold: int,
) -> SequenceResult:
    label = position.label
    if not probe.comparable:
        return SequenceResult(
            position, None, 0, False,
            f"The rolled {label} shows too few ridge details to compare: take it again.",
            SequenceStatus.NOT_CHECKED,
        )
    row = {s: v for (r, s), v in scores.items() if r == position}
    own = row.get(position)
    best = max(row, key=lambda s: row[s]) if row else None
    if best is not None and row[best] >= threshold and best != position and (
        own is None or row[best] > own
    ):
        return SequenceResult(
            position, best, row[best], False,
            f"The rolled {label} matches the {best.label} of the slaps: "
            "check which finger was rolled.",
            SequenceStatus.OUT_OF_SEQUENCE, own,
        )
    if own is None:
        why = (
            "too few ridge details in the slap"
            if position in gallery
            else "no slap print of this finger"
        )
        return SequenceResult(
            position, None, 0, position not in gallery,
            f"The rolled {label} could not be checked: {why}.",
            SequenceStatus.NOT_CHECKED,
        )
    if own >= threshold:
        return SequenceResult(
            position, position, own, True,
            f"The rolled {label} matches the slap.", SequenceStatus.MATCHED, own,
        )
    return SequenceResult(
        position, None, own, False,
        f"The rolled {label} matches no finger of the slaps: check the finger and retake it.",
        SequenceStatus.NO_MATCH, own,
    )


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Two positions whose prints come from the same finger."""

    first: Position
    second: Position
    score: int

    @property
    def reason(self) -> str:
        """What the officer reads."""
        return (
            f"The {self.first.label} and the {self.second.label} look like the same finger: "
            "retake the one that was placed wrongly."
        )


def check_duplicates(
    images: Mapping[Position, np.ndarray],
    ppi: float = NATIVE_PPI,
    *,
    extractor: MinutiaeExtractor | None = None,
    matcher: Bozorth3 | None = None,
    threshold: int = DUPLICATE_THRESHOLD,
    among: Collection[Position] | None = None,
) -> list[Duplicate]:
    """Pairs of positions in ``images`` whose prints match each other (same finger twice).

    With ``among``, only pairs with at least one position in it are compared: the prints
    another check already vouched for need not be compared with each other.
    """
    if among is not None and not among:
        return []
    matcher = matcher or Bozorth3()
    extractor = extractor or NbisMinutiae(matcher.backend)
    prints = prepare(images, ppi, extractor, matcher)
    found: list[Duplicate] = []
    for a, b in itertools.combinations(sorted(prints), 2):
        if among is not None and a not in among and b not in among:
            continue
        if prints[a].comparable and prints[b].comparable:
            score = matcher.score(prints[a].handle, prints[b].handle)
            if score >= threshold:
                found.append(Duplicate(a, b, score))
    return found
