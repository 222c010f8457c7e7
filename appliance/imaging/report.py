"""The quality report of a whole booking, JSON-ready for the kiosk, the transaction and central.

One dictionary per booking: for every finger position its rolled and plain NFIQ 2 scores, the
actionable measures behind the officer's feedback, retakes, overrides with their reasons, and
the sequence check; for every slap where its fingers were found (Type-14 field 14.021) and the
per-finger quality values the Type-14 records carry (14.024 FQM, with 14.022 NQM marked "not
computed" since NFIQ 1 is not run). Plain Python types only, so ``json.dumps`` takes it as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appliance.domain import (
    ROLLED_POSITIONS,
    SLAP_FINGERS,
    Booking,
    Impression,
    ImpressionType,
    Position,
    QualityReport,
)
from appliance.imaging import nfiq2
from appliance.imaging.config import QualityConfig
from appliance.imaging.gate import QualityGate
from appliance.imaging.matching import Duplicate, SequenceReport
from appliance.imaging.segmentation import SlapSegmentation

#: Quality algorithm of 14.024 FQM: NFIQ 2.3 (the version the NBIS bindings bundle), CBEFF
#: owner 0x0101 and product 0x0039 as NFIQ 2 declares them (NFIQ2::Identifiers::CBEFF).
NFIQ2_VENDOR = "0101"
NFIQ2_PRODUCT = 0x0039
QVU_FAILED = 255  # ANSI/NIST-ITL: a failed attempt to calculate a quality score
QVU_NOT_COMPUTED = 254  # ANSI/NIST-ITL: no attempt to calculate a quality score

#: NFIQ 2 actionable measures and our own, as the kiosk and central receive them.
ACTIONABLE_KEYS = {
    nfiq2.UNIFORM: "uniformity",
    nfiq2.EMPTY: "mean_gray",
    nfiq2.MINUTIAE: "minutiae",
    nfiq2.FOREGROUND: "foreground_px",
    nfiq2.PRINT_MEAN_GRAY: "print_mean_gray",
    nfiq2.PRINT_CONTRAST: "print_contrast",
    nfiq2.RESAMPLED_FROM_PPI: "resampled_from_ppi",
}


def booking_quality_report(
    booking: Booking,
    reports: Mapping[Position, QualityReport],
    sequence: SequenceReport | None,
    *,
    config: QualityConfig | None = None,
    segmentations: Iterable[SlapSegmentation] = (),
    duplicates: Iterable[Duplicate] = (),
) -> dict[str, Any]:
    """The booking's quality report.

    ``reports`` holds the NFIQ 2 reports of the plain fingers segmented from the slaps, by
    finger position; rolled and single plain impressions carry their own report in
    ``Impression.quality``. ``sequence`` is the sequence check (None when not run).
    """
    gate = QualityGate(config)
    latest = _latest_impressions(booking.impressions)
    backends = {r.backend for r in reports.values() if r.backend}
    backends |= {i.quality.backend for i in latest.values() if i.quality and i.quality.backend}

    slap_override = {
        finger: latest[(slap, ImpressionType.PLAIN_LIVE_SCAN)].override_reason
        for slap, fingers in SLAP_FINGERS.items()
        if (slap, ImpressionType.PLAIN_LIVE_SCAN) in latest
        for finger in fingers
    }
    positions: list[dict[str, Any]] = []
    for position in ROLLED_POSITIONS:
        annotation = booking.annotations.get(position)
        rolled = latest.get((position, ImpressionType.ROLLED_LIVE_SCAN))
        plain_report = reports.get(position)
        entry: dict[str, Any] = {
            "position": int(position),
            "label": position.label,
            "annotation": annotation.value if annotation else None,
            "rolled": _impression_entry(gate, position, rolled, annotation),
            "plain": _report_entry(
                gate, position, plain_report, ImpressionType.PLAIN_LIVE_SCAN, annotation
            )
            if plain_report is not None
            else None,
            "sequence": _sequence_entry(sequence, position),
        }
        if entry["plain"] is not None and slap_override.get(position):
            entry["plain"]["override_reason"] = slap_override[position]
            entry["plain"]["overridden"] = True
        positions.append(entry)

    by_slap = {s.slap: s for s in segmentations}
    slaps: list[dict[str, Any]] = []
    for slap in SLAP_FINGERS:
        impression = latest.get((slap, ImpressionType.PLAIN_LIVE_SCAN))
        segmentation = by_slap.get(slap)
        if impression is None and segmentation is None:
            continue
        fingers = SLAP_FINGERS[slap]
        verdict = gate.evaluate_slap(
            slap,
            {p: reports[p] for p in fingers if p in reports},
            segmentation.missing if segmentation else (),
            retakes=impression.retakes if impression else 0,
            annotations=booking.annotations,
        )
        slaps.append(
            {
                "position": int(slap),
                "label": slap.label,
                "retakes": impression.retakes if impression else 0,
                "override_reason": impression.override_reason if impression else None,
                "passed": verdict.passed,
                "message": verdict.message,
                "found": [int(f.position) for f in segmentation.fingers] if segmentation else [],
                "missing": [int(p) for p in segmentation.missing] if segmentation else [],
                "positions_inferred": segmentation.positions_inferred if segmentation else False,
                "segments_14_021": segmentation.segment_positions() if segmentation else [],
                "alternate_segments_14_025": _polygons(segmentation),
                "fqm_14_024": [_fqm(p, reports.get(p)) for p in fingers if p in reports],
                "nqm_14_022": [[int(p), QVU_NOT_COMPUTED] for p in fingers if p in reports],
            }
        )

    dupes = [
        {"first": int(d.first), "second": int(d.second), "score": d.score, "reason": d.reason}
        for d in duplicates
    ]
    retakes = sum(i.retakes for i in latest.values())
    overrides = sum(1 for i in latest.values() if i.override_reason)
    failing = [
        e["position"]
        for e in positions
        for kind in ("rolled", "plain")
        if e[kind] is not None and not e[kind]["gate"]["passed"] and not e[kind]["overridden"]
    ]
    failing += [s["position"] for s in slaps if not s["passed"] and not s["override_reason"]]
    flagged = sequence.flagged if sequence else []
    return {
        "booking_id": booking.booking_id,
        "nfiq2_backend": ", ".join(sorted(backends)),
        "positions": positions,
        "slaps": slaps,
        "duplicates": dupes,
        "summary": {
            "passed": not failing and not flagged and not dupes,
            "below_threshold": sorted(set(failing)),
            "retakes": retakes,
            "overrides": overrides,
            "sequence_checked": sequence is not None,
            "sequence_ok": sequence.ok if sequence else None,
            "out_of_sequence": [int(p) for p in flagged],
            "duplicates": len(dupes),
        },
    }


def _latest_impressions(
    impressions: Iterable[Impression],
) -> dict[tuple[Position, ImpressionType], Impression]:
    latest: dict[tuple[Position, ImpressionType], Impression] = {}
    for impression in impressions:  # later captures of a position replace earlier ones
        latest[(impression.position, impression.impression_type)] = impression
    return latest


def _impression_entry(
    gate: QualityGate, position: Position, impression: Impression | None, annotation: Any
) -> dict[str, Any] | None:
    if impression is None:
        return None
    entry = _report_entry(
        gate,
        position,
        impression.quality,
        impression.impression_type,
        annotation,
        retakes=impression.retakes,
    )
    entry["retakes"] = impression.retakes
    entry["override_reason"] = impression.override_reason
    entry["overridden"] = bool(impression.override_reason)
    return entry


def _report_entry(
    gate: QualityGate,
    position: Position,
    report: QualityReport | None,
    impression: ImpressionType,
    annotation: Any,
    *,
    retakes: int = 0,
) -> dict[str, Any]:
    if report is None:
        report = QualityReport(nfiq2=None, failed=True, feedback=["No quality report."])
    verdict = gate.evaluate(
        position, report, impression=impression, retakes=retakes, annotation=annotation
    )
    return {
        "nfiq2": report.nfiq2,
        "failed": report.failed,
        "measures": {
            name: round(float(report.measures[key]), 3)
            for key, name in ACTIONABLE_KEYS.items()
            if key in report.measures
        },
        "feedback": list(report.feedback),
        "gate": {
            "passed": verdict.passed,
            "threshold": verdict.threshold,
            "needs_retake": verdict.needs_retake,
            "override_allowed": verdict.override_allowed,
            "message": verdict.message,
        },
        "retakes": 0,
        "override_reason": None,
        "overridden": False,
        "fqm_14_024": _fqm(position, report),
        "nqm_14_022": [int(position), QVU_NOT_COMPUTED],
    }


def _fqm(position: Position, report: QualityReport | None) -> list[Any]:
    """One 14.024 FQM subfield: finger, quality value, algorithm vendor, algorithm product."""
    if report is None:
        value = QVU_NOT_COMPUTED
    elif report.failed or report.nfiq2 is None:
        value = QVU_FAILED
    else:
        value = int(report.nfiq2)
    return [int(position), value, NFIQ2_VENDOR, NFIQ2_PRODUCT]


def _sequence_entry(sequence: SequenceReport | None, position: Position) -> dict[str, Any] | None:
    if sequence is None or position not in sequence.results:
        return None
    r = sequence.results[position]
    return {
        "status": r.status.value,
        "ok": r.ok,
        "matched_position": int(r.matched_position) if r.matched_position else None,
        "score": r.score,
        "own_score": r.own_score,
        "reason": r.reason,
    }


def _polygons(segmentation: SlapSegmentation | None) -> list[dict[str, Any]]:
    if segmentation is None:
        return []
    return [
        {"finger": a["finger"], "points": [list(p) for p in a["points"]]}
        for a in segmentation.alternate_segment_positions()
    ]
