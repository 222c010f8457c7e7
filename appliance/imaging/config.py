"""The quality section of the station's configuration: NFIQ 2 thresholds, overrides, capture.

A strict pydantic model like every other config section (unknown keys are errors, every field
described). The station's ``StationConfig`` holds it as ``quality: QualityConfig``; positions
are ANSI/NIST-ITL finger codes 1..10, so a TOML file reads::

    [quality]
    min_nfiq2_rolled = 35
    min_nfiq2_plain = 30
    allow_override = true

    [quality.position_thresholds]
    1 = 40   # right thumb
    10 = 20  # left little finger
"""

from __future__ import annotations

from pydantic import Field, field_validator

from appliance.domain import ImpressionType, Position
from appliance.strict import Strict

#: The threshold NIST and most agencies start from: NFIQ 2 below 30 predicts poor matching.
DEFAULT_MIN_NFIQ2 = 30


class QualityConfig(Strict):
    """NFIQ 2 gates, officer overrides, auto-capture and the sequence check."""

    min_nfiq2_rolled: int = Field(
        DEFAULT_MIN_NFIQ2,
        ge=0,
        le=100,
        description="Lowest NFIQ 2 score a rolled print may have without a retake or override.",
    )
    min_nfiq2_plain: int = Field(
        DEFAULT_MIN_NFIQ2,
        ge=0,
        le=100,
        description=(
            "Lowest NFIQ 2 score of a plain (flat) finger, including each finger segmented "
            "from a slap."
        ),
    )
    position_thresholds: dict[int, int] = Field(
        default_factory=dict,
        description=(
            "Per-finger NFIQ 2 thresholds by ANSI/NIST-ITL position 1..10 (1 right thumb .. "
            "10 left little); they replace both defaults for that finger."
        ),
    )
    allow_override: bool = Field(
        True,
        description="The officer may accept a print below threshold by recording a reason.",
    )
    retakes_before_override: int = Field(
        1,
        ge=0,
        le=10,
        description="Retakes of a failing print before the override is offered.",
    )
    auto_capture_frames: int = Field(
        3,
        ge=1,
        le=30,
        description="Consecutive preview frames passing the live checks before auto-capture.",
    )
    sequence_check: bool = Field(
        True, description="Match rolled prints against the slaps to catch fingers out of order."
    )
    match_threshold: int = Field(
        40,
        ge=1,
        le=500,
        description="BOZORTH3 score from which a rolled print matches a slap finger.",
    )
    duplicate_threshold: int = Field(
        60,
        ge=1,
        le=500,
        description="BOZORTH3 score from which two positions count as the same finger twice.",
    )

    @field_validator("position_thresholds")
    @classmethod
    def _finger_positions(cls, value: dict[int, int]) -> dict[int, int]:
        for position, threshold in value.items():
            if not 1 <= position <= 10:
                raise ValueError(f"position {position} is not a finger (1..10)")
            if not 0 <= threshold <= 100:
                raise ValueError(f"threshold {threshold} for position {position} is not 0..100")
        return value

    def threshold(self, position: Position, impression: ImpressionType) -> int:
        """The NFIQ 2 score a print of ``position`` must reach."""
        if int(position) in self.position_thresholds:
            return self.position_thresholds[int(position)]
        if impression is ImpressionType.ROLLED_LIVE_SCAN:
            return self.min_nfiq2_rolled
        return self.min_nfiq2_plain
