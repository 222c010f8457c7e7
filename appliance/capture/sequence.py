"""Which prints a booking takes, in which order, in which scanner mode.

Slaps come first: they are the reference the rolled prints are checked against (sequence
check), and a subject who cannot roll still leaves usable flats.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.domain import ROLLED_POSITIONS, ImpressionType, Position
from drivers.base import CaptureMode


@dataclass(frozen=True, slots=True)
class Step:
    """One print to take."""

    position: Position
    mode: CaptureMode
    impression_type: ImpressionType

    @property
    def prompt(self) -> str:
        """What the kiosk tells the officer."""
        if self.mode is CaptureMode.ROLLED:
            return f"Roll the {self.position.label} from nail edge to nail edge"
        if self.mode is CaptureMode.TWO_THUMBS:
            return "Place both thumbs flat on the glass"
        hand = "right" if self.position is Position.PLAIN_RIGHT_FOUR else "left"
        return f"Place the four fingers of the {hand} hand flat on the glass"


SLAPS: tuple[Step, ...] = (
    Step(Position.PLAIN_RIGHT_FOUR, CaptureMode.FLAT_FOUR, ImpressionType.PLAIN_LIVE_SCAN),
    Step(Position.PLAIN_LEFT_FOUR, CaptureMode.FLAT_FOUR, ImpressionType.PLAIN_LIVE_SCAN),
    Step(Position.PLAIN_THUMBS, CaptureMode.TWO_THUMBS, ImpressionType.PLAIN_LIVE_SCAN),
)
ROLLS: tuple[Step, ...] = tuple(
    Step(p, CaptureMode.ROLLED, ImpressionType.ROLLED_LIVE_SCAN) for p in ROLLED_POSITIONS
)
SEQUENCES: dict[str, tuple[Step, ...]] = {"tenprint": SLAPS + ROLLS, "flats": SLAPS}
