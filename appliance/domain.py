"""The booking domain in the field's own words: positions, impressions, minutiae, bookings.

Finger positions and impression types follow ANSI/NIST-ITL 1-2011 (Table 8 and Table 7):
positions 1..10 are right thumb .. left little, 11/12 plain thumbs, 13/14 right/left plain four
fingers, 15 both thumbs; impression 0 is plain live-scan, 1 is rolled live-scan.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np


class Position(enum.IntEnum):
    """Finger position code (ANSI/NIST-ITL 1-2011 Table 8)."""

    UNKNOWN = 0
    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10
    PLAIN_RIGHT_THUMB = 11
    PLAIN_LEFT_THUMB = 12
    PLAIN_RIGHT_FOUR = 13
    PLAIN_LEFT_FOUR = 14
    PLAIN_THUMBS = 15

    @property
    def label(self) -> str:
        """Plain-language name shown to the officer."""
        return self.name.replace("_", " ").lower()

    @property
    def is_slap(self) -> bool:
        """True for multi-finger plain impressions (four fingers, two thumbs)."""
        return self in (Position.PLAIN_RIGHT_FOUR, Position.PLAIN_LEFT_FOUR, Position.PLAIN_THUMBS)


ROLLED_POSITIONS: tuple[Position, ...] = tuple(Position(p) for p in range(1, 11))
SLAP_POSITIONS: tuple[Position, ...] = (
    Position.PLAIN_RIGHT_FOUR,
    Position.PLAIN_LEFT_FOUR,
    Position.PLAIN_THUMBS,
)

#: Fingers in a slap, in the order they lie on the platen from left to right of the image.
SLAP_FINGERS: dict[Position, tuple[Position, ...]] = {
    Position.PLAIN_RIGHT_FOUR: (
        Position.RIGHT_INDEX,
        Position.RIGHT_MIDDLE,
        Position.RIGHT_RING,
        Position.RIGHT_LITTLE,
    ),
    Position.PLAIN_LEFT_FOUR: (
        Position.LEFT_LITTLE,
        Position.LEFT_RING,
        Position.LEFT_MIDDLE,
        Position.LEFT_INDEX,
    ),
    Position.PLAIN_THUMBS: (Position.LEFT_THUMB, Position.RIGHT_THUMB),
}


class ImpressionType(enum.IntEnum):
    """Impression type code (ANSI/NIST-ITL 1-2011 Table 7)."""

    PLAIN_LIVE_SCAN = 0
    ROLLED_LIVE_SCAN = 1


class Annotation(enum.StrEnum):
    """Why a position has no usable print (ANSI/NIST-ITL AMP codes)."""

    AMPUTATED = "XX"
    UNABLE_TO_PRINT = "UP"


class MinutiaType(enum.StrEnum):
    """Minutia kind, with the single letters used on the command line."""

    ENDING = "E"
    BIFURCATION = "B"
    OTHER = "O"


@dataclass(frozen=True, slots=True)
class Minutia:
    """One minutia in image pixels.

    ``angle`` is in radians, counter-clockwise from +x as seen on screen (y grows downwards in
    the image), pointing along the ridge away from the minutia: the ISO/IEC 19794-2 convention.
    """

    x: float
    y: float
    angle: float
    kind: MinutiaType
    quality: int

    @property
    def angle_deg(self) -> float:
        """The angle in degrees, 0 <= a < 360."""
        return math.degrees(self.angle) % 360.0


@dataclass(frozen=True, slots=True)
class FingerBox:
    """A finger's rotated box in an image: centre, width, height (along the finger), lean.

    ``angle`` is in degrees, counter-clockwise on screen; 0 means the finger points straight up (its
    ``height`` runs along the finger). The synthetic generator's truth boxes and the slap
    segmentation's found boxes are both of this kind, so they compare directly.
    """

    cx: float
    cy: float
    width: float
    height: float
    angle: float

    def corners(self) -> np.ndarray:
        """The four corners (x, y): tip-left, tip-right, base-right, base-left of the finger."""
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        hw, hh = 0.5 * self.width, 0.5 * self.height
        local = np.array([(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)])
        x = self.cx + c * local[:, 0] + s * local[:, 1]
        y = self.cy - s * local[:, 0] + c * local[:, 1]
        return np.stack([x, y], axis=1)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x0, y0, x1, y1) around the rotated box."""
        c = self.corners()
        x, y = c[:, 0], c[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())

    def bounds(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) inclusive pixel bounds inside an image of ``shape``."""
        x0, y0, x1, y1 = self.bbox
        h, w = shape
        left = int(np.clip(math.floor(x0), 0, w - 1))
        right = int(np.clip(math.ceil(x1), 0, w - 1))
        top = int(np.clip(math.floor(y0), 0, h - 1))
        bottom = int(np.clip(math.ceil(y1), 0, h - 1))
        return left, top, right, bottom

    def scaled(self, factor: float) -> FingerBox:
        """The same box in an image ``factor`` times larger."""
        return FingerBox(
            self.cx * factor, self.cy * factor, self.width * factor, self.height * factor,
            self.angle,
        )


@dataclass(slots=True)
class QualityReport:
    """NFIQ 2 score and the actionable measures behind the officer's feedback."""

    nfiq2: int | None
    measures: dict[str, float] = field(default_factory=dict)
    feedback: list[str] = field(default_factory=list)
    failed: bool = False
    backend: str = ""


@dataclass(slots=True)
class Impression:
    """One captured image: a finger or a slap, with its position, type and resolution."""

    position: Position
    impression_type: ImpressionType
    image: np.ndarray
    ppi: int
    impression_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    captured_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    quality: QualityReport | None = None
    retakes: int = 0
    override_reason: str | None = None


@dataclass(slots=True)
class Subject:
    """The person booked. Personal data: encrypted at rest, never logged."""

    last_name: str = ""
    first_name: str = ""
    date_of_birth: str = ""
    sex: str = ""
    #: Further ANSI/NIST-ITL Type-2 descriptors by field number (e.g. 20 POB, 25 RAC), as the
    #: agency's records system or the officer supplies them.
    descriptors: dict[int, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep personal data out of logs and tracebacks
        return "Subject(<redacted>)"


@dataclass(slots=True)
class Booking:
    """One subject's capture session: its impressions, annotations and transaction."""

    booking_number: str
    subject: Subject = field(default_factory=Subject)
    booking_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    impressions: list[Impression] = field(default_factory=list)
    annotations: dict[Position, Annotation] = field(default_factory=dict)
    clock_trusted: bool = True
