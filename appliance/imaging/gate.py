"""The quality gate: does a print pass, must it be retaken, may the officer override it.

Pure decisions from the configuration and a :class:`appliance.domain.QualityReport`; the
capture workflow records retakes and overrides (with the officer's reason, audited). Positions
annotated XX (amputated) or UP (unable to print) skip the gate: there is no print to judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from appliance.domain import Annotation, ImpressionType, Position, QualityReport
from appliance.imaging.config import QualityConfig


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What the kiosk does with a print."""

    passed: bool
    needs_retake: bool
    override_allowed: bool
    message: str
    threshold: int | None = None
    below: list[Position] = field(default_factory=list)  # slap fingers under threshold


class QualityGate:
    """Applies the configured NFIQ 2 thresholds."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def evaluate(
        self,
        position: Position,
        report: QualityReport,
        *,
        impression: ImpressionType = ImpressionType.PLAIN_LIVE_SCAN,
        retakes: int = 0,
        annotation: Annotation | None = None,
    ) -> GateVerdict:
        """The verdict for one finger print (``retakes`` already taken of it)."""
        if annotation is not None:
            return self._skipped(position, annotation)
        threshold = self.config.threshold(position, impression)
        if report.failed or report.nfiq2 is None:
            why = report.feedback[0] if report.feedback else "The quality could not be measured."
            return self._below(position, retakes, why, threshold, [])
        if report.nfiq2 >= threshold:
            return GateVerdict(
                passed=True,
                needs_retake=False,
                override_allowed=False,
                message=f"The {position.label} passed (NFIQ 2 {report.nfiq2}).",
                threshold=threshold,
            )
        advice = f" {report.feedback[0]}" if report.feedback else ""
        why = (
            f"The {position.label} scored NFIQ 2 {report.nfiq2}, below {threshold}: "
            f"take it again.{advice}"
        )
        return self._below(position, retakes, why, threshold, [])

    def evaluate_slap(
        self,
        slap: Position,
        fingers: Mapping[Position, QualityReport],
        missing: Sequence[Position] = (),
        *,
        retakes: int = 0,
        annotations: Mapping[Position, Annotation] | None = None,
    ) -> GateVerdict:
        """The verdict for a slap from its segmented fingers' reports and missing fingers."""
        annotations = annotations or {}
        below: list[Position] = []
        notes: list[str] = []
        for position in missing:
            if position not in annotations:
                below.append(position)
                notes.append(f"the {position.label} was not found")
        for position, report in fingers.items():
            if position in annotations:
                continue
            verdict = self.evaluate(position, report, retakes=retakes)
            if not verdict.passed:
                below.append(position)
                score = "no score" if report.nfiq2 is None else f"NFIQ 2 {report.nfiq2}"
                notes.append(f"the {position.label} is too poor ({score})")
        if not below:
            return GateVerdict(True, False, False, f"The {slap.label} slap passed.")
        message = f"Take the {slap.label} slap again: " + "; ".join(notes) + "."
        return self._below(slap, retakes, message, None, below)

    def _below(
        self,
        position: Position,
        retakes: int,
        message: str,
        threshold: int | None,
        below: list[Position],
    ) -> GateVerdict:
        override = (
            self.config.allow_override and retakes >= self.config.retakes_before_override
        )
        if override:
            message += " Or accept it with a reason."
        return GateVerdict(
            passed=False,
            needs_retake=True,
            override_allowed=override,
            message=message,
            threshold=threshold,
            below=below,
        )

    @staticmethod
    def _skipped(position: Position, annotation: Annotation) -> GateVerdict:
        meaning = "amputated" if annotation is Annotation.AMPUTATED else "unable to print"
        return GateVerdict(
            passed=True,
            needs_retake=False,
            override_allowed=False,
            message=f"The {position.label} is marked {meaning} ({annotation.value}): no print.",
        )
