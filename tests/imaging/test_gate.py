"""Per-position NFIQ 2 thresholds, retakes and overrides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from appliance.domain import Annotation, ImpressionType, Position, QualityReport
from appliance.imaging.config import QualityConfig
from appliance.imaging.gate import QualityGate

ROLLED = ImpressionType.ROLLED_LIVE_SCAN


def scored(score: int | None, feedback: list[str] | None = None) -> QualityReport:
    return QualityReport(
        nfiq2=score, feedback=feedback or [], failed=score is None, backend="nbis-py 0.1.3"
    )


def test_config_is_strict_and_described():
    with pytest.raises(ValidationError):
        QualityConfig(min_nfiq_rolled=30)  # typo: unknown keys are errors
    with pytest.raises(ValidationError):
        QualityConfig(position_thresholds={11: 30})  # not a finger
    with pytest.raises(ValidationError):
        QualityConfig(position_thresholds={3: 130})
    with pytest.raises(ValidationError):
        QualityConfig(auto_capture_frames=0)
    for name, field in QualityConfig.model_fields.items():
        assert field.description, name


def test_toml_style_keys_become_positions():
    config = QualityConfig.model_validate(
        {"min_nfiq2_rolled": 35, "position_thresholds": {"10": 20, "1": 45}}
    )
    assert config.threshold(Position.LEFT_LITTLE, ROLLED) == 20
    assert config.threshold(Position.RIGHT_THUMB, ImpressionType.PLAIN_LIVE_SCAN) == 45
    assert config.threshold(Position.RIGHT_INDEX, ROLLED) == 35
    assert config.threshold(Position.RIGHT_INDEX, ImpressionType.PLAIN_LIVE_SCAN) == 30


def test_a_good_print_passes():
    verdict = QualityGate().evaluate(Position.RIGHT_INDEX, scored(55), impression=ROLLED)
    assert verdict.passed and not verdict.needs_retake and not verdict.override_allowed
    assert verdict.threshold == 30


def test_a_poor_print_is_retaken_before_an_override_is_offered():
    gate = QualityGate(QualityConfig(retakes_before_override=2))
    report = scored(18, ["Press a little harder."])
    first = gate.evaluate(Position.LEFT_RING, report, retakes=0)
    assert not first.passed and first.needs_retake and not first.override_allowed
    assert "18" in first.message and "Press a little harder." in first.message
    third = gate.evaluate(Position.LEFT_RING, report, retakes=2)
    assert third.needs_retake and third.override_allowed
    assert "reason" in third.message


def test_overrides_can_be_switched_off():
    gate = QualityGate(QualityConfig(allow_override=False, retakes_before_override=0))
    verdict = gate.evaluate(Position.LEFT_RING, scored(5), retakes=9)
    assert verdict.needs_retake and not verdict.override_allowed


def test_a_failed_measurement_never_passes():
    report = scored(None, ["The image is blank: place the finger and capture again."])
    verdict = QualityGate(QualityConfig(min_nfiq2_plain=0)).evaluate(Position.RIGHT_THUMB, report)
    assert not verdict.passed and verdict.needs_retake
    assert verdict.message.startswith("The image is blank")


@pytest.mark.parametrize("annotation", list(Annotation))
def test_amputated_or_unprintable_fingers_skip_the_gate(annotation):
    verdict = QualityGate().evaluate(Position.LEFT_INDEX, scored(None), annotation=annotation)
    assert verdict.passed and not verdict.needs_retake
    assert annotation.value in verdict.message


def test_a_slap_fails_on_its_weakest_or_missing_finger():
    gate = QualityGate()
    fingers = {Position.RIGHT_INDEX: scored(60), Position.RIGHT_MIDDLE: scored(12),
               Position.RIGHT_RING: scored(50)}
    verdict = gate.evaluate_slap(
        Position.PLAIN_RIGHT_FOUR, fingers, missing=[Position.RIGHT_LITTLE]
    )
    assert not verdict.passed and verdict.needs_retake
    assert verdict.below == [Position.RIGHT_LITTLE, Position.RIGHT_MIDDLE]
    assert "right little was not found" in verdict.message
    annotated = gate.evaluate_slap(
        Position.PLAIN_RIGHT_FOUR,
        {**fingers, Position.RIGHT_MIDDLE: scored(44)},
        missing=[Position.RIGHT_LITTLE],
        annotations={Position.RIGHT_LITTLE: Annotation.AMPUTATED},
    )
    assert annotated.passed
