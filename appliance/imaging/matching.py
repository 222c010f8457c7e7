"""Sequence and duplicate checks: were the rolled prints taken from the right fingers.

Each rolled print is matched against its own finger cut from the slaps (the slaps come first in
the capture sequence for this reason), and against every other slap finger only when that
fails. A rolled print that matches another finger better is out of sequence (the subject rolled
the wrong finger, or the officer skipped one) and flagged; one that matches nothing is left
unconfirmed. The same finger captured under two positions is a duplicate.

Minutiae come from a pluggable extractor: any callable taking (image, ppi) and returning
:class:`appliance.domain.Minutia` objects (in that image's pixels) or template bytes the matcher
reads. The default is NIST's MINDTCT; matching is NIST's BOZORTH3, both through the NBIS binding
(see :mod:`appliance.imaging.binding`). The matcher reads templates in the binding's own
ISO/IEC 19794-2:2005-style layout (a 26-byte header, then 6 bytes per minutia), so minutiae from
any extractor are serialised to it here. BOZORTH3 scores 0 for a template with fewer than 15
minutiae; such prints are reported as not checkable rather than as mismatches.
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from appliance.domain import Minutia, MinutiaType, Position
from appliance.imaging.binding import Backend, NbisEngine, domain_minutiae
from appliance.imaging.errors import MatcherUnavailable, QualityBackendUnavailable
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
    """MINDTCT minutiae through the NBIS binding (the default extractor); build it once.

    Pass the station's one :class:`NbisEngine`; without one, a new engine is built.
    """

    def __init__(self, backend: Backend | None = None, *, engine: NbisEngine | None = None
                 ) -> None:
        self.engine = engine or NbisEngine(backend)
        self.backend = self.engine.backend

    def __call__(self, image: np.ndarray, ppi: float = NATIVE_PPI) -> list[Minutia]:
        """Minutiae of ``image`` in its own pixels; an unreadable image gives none."""
        gray = as_gray_u8(image)
        if gray is None or min(gray.shape) < 32:
            return []
        native = resample(gray, ppi)
        try:
            found = self.engine.extract(native)
        except self.engine.errors:
            return []
        return domain_minutiae(found, float(ppi) / NATIVE_PPI)


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
    """BOZORTH3 scores between templates, through the NBIS binding.

    Pass the station's one :class:`NbisEngine`; without one, a new engine is built.
    """

    def __init__(self, backend: Backend | None = None, *, engine: NbisEngine | None = None
                 ) -> None:
        try:
            self.engine = engine or NbisEngine(backend)
        except QualityBackendUnavailable as exc:
            raise MatcherUnavailable(f"BOZORTH3 is unavailable: {exc}") from exc
        self.backend = self.engine.backend

    def load(self, template: bytes) -> Any:
        """The binding's minutiae set for ``template``; raises :class:`TemplateError`."""
        return self.engine.load_template(template)

    def score(self, a: Any, b: Any) -> int:
        """BOZORTH3 score of two loaded templates (symmetric; 0 = nothing in common)."""
        return self.engine.compare(a, b)


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


def fingerprint_of(position: Position, minutiae: Sequence[Minutia], width: int, height: int,
                   matcher: Bozorth3) -> Fingerprint:
    """One print prepared for matching from its minutiae (500 ppi pixels) and size."""
    template = encode_template(minutiae, width, height)
    count = min(len(minutiae), BOZORTH_MAX_MINUTIAE)
    # BOZORTH3 scores 0 below MIN_MINUTIAE anyway (and the binding refuses empty ones).
    handle = matcher.load(template) if count >= MIN_MINUTIAE else None
    return Fingerprint(position, template, count, handle)


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
            handle = matcher.load(template) if count >= MIN_MINUTIAE else None
            prints[position] = Fingerprint(position, template, count, handle)
            continue
        scale = NATIVE_PPI / float(ppi)
        native = [Minutia(m.x * scale, m.y * scale, m.angle, m.kind, m.quality) for m in extracted]
        h, w = image.shape[:2]
        prints[position] = fingerprint_of(position, native, round(w * scale), round(h * scale),
                                          matcher)
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
        """True when no rolled print is flagged."""
        return all(r.ok for r in self.results.values())

    @property
    def unconfirmed(self) -> list[Position]:
        """Rolled positions neither confirmed nor flagged: shown to the officer, not blocking."""
        return [p for p, r in self.results.items()
                if r.ok and r.status in (SequenceStatus.NO_MATCH, SequenceStatus.NOT_CHECKED)]

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
    own_first: bool = True,
    strict: bool = False,
) -> SequenceReport:
    """Match each rolled print against the fingers cut from the slaps (positions 1..10).

    Both mappings hold uint8 images at ``ppi``. The extractor and matcher are slow to build;
    pass long-lived ones (the station builds them once at start-up). See
    :func:`judge_sequence` for ``own_first`` and ``strict``.
    """
    matcher = matcher or Bozorth3()
    extractor = extractor or NbisMinutiae(engine=matcher.engine)
    probes = prepare(rolled, ppi, extractor, matcher)
    gallery = prepare(slap_fingers, ppi, extractor, matcher)
    return judge_sequence(probes, gallery, matcher, threshold=threshold, own_first=own_first,
                          strict=strict)


class Scorer(Protocol):
    """What judging needs of a matcher: a score between two loaded templates."""

    def score(self, a: Any, b: Any) -> int:
        """BOZORTH3 score of two loaded templates."""
        ...


def judge_sequence(
    probes: Mapping[Position, Fingerprint],
    gallery: Mapping[Position, Fingerprint],
    matcher: Scorer,
    *,
    threshold: int = MATCH_THRESHOLD,
    own_first: bool = True,
    strict: bool = False,
) -> SequenceReport:
    """The sequence check of prepared rolled prints against prepared slap fingers.

    With ``own_first`` (the station's way) a rolled print that matches its own slap finger
    is taken as matched, and only a print that does not is compared with every other slap
    finger: a genuine booking costs ten comparisons instead of a hundred, and a chance score
    against another finger above a genuine one no longer raises a false alarm. Without it,
    every rolled print is compared with every slap finger and flagged when another scores
    higher than its own.

    Only positive evidence is flagged: a rolled print that matches another slap finger better
    than its own. A print that matches no slap finger, or has too few minutiae to compare, is
    left unconfirmed (:attr:`SequenceReport.unconfirmed`): genuine prints do that often (on
    FVC2002, 8 to 43 % of genuine pairs score below the threshold, as
    ``benchmarks/sequence_check.py`` shows), so flagging them would teach officers to override
    the check. ``strict`` flags them too,
    as the check did before.
    """
    scores: dict[tuple[Position, Position], int] = {}
    results: dict[Position, SequenceResult] = {}
    for position, probe in probes.items():
        row: dict[Position, int] = {}
        if probe.comparable:
            own = gallery.get(position)
            if own is not None and own.comparable:
                row[position] = matcher.score(probe.handle, own.handle)
            if not own_first or row.get(position, 0) < threshold:
                for other, finger in gallery.items():
                    if other != position and finger.comparable:
                        row[other] = matcher.score(probe.handle, finger.handle)
        scores.update({(position, s): v for s, v in row.items()})
        results[position] = _judge(position, probe, gallery, row, threshold, strict)
    return SequenceReport(results=results, threshold=threshold, scores=scores)


def _judge(
    position: Position,
    probe: Fingerprint,
    gallery: Mapping[Position, Fingerprint],
    row: Mapping[Position, int],
    threshold: int,
    strict: bool,
) -> SequenceResult:
    label = position.label
    if not probe.comparable:
        return SequenceResult(
            position, None, 0, not strict,
            f"The rolled {label} shows too few ridge details to compare: take it again.",
            SequenceStatus.NOT_CHECKED,
        )
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
            position, None, 0, position not in gallery or not strict,
            f"The rolled {label} could not be checked: {why}.",
            SequenceStatus.NOT_CHECKED,
        )
    if own >= threshold:
        return SequenceResult(
            position, position, own, True,
            f"The rolled {label} matches the slap.", SequenceStatus.MATCHED, own,
        )
    return SequenceResult(
        position, None, own, not strict,
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
    extractor = extractor or NbisMinutiae(engine=matcher.engine)
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
