"""The plain sentences the officer reads, and the rules that pick them from measures.

One catalogue for the live preview and the final NFIQ 2 report, so the kiosk shows the same words
for the same problem. Each sentence has a stable code (the enum member name) that a translated
kiosk can key on; the English text is the value.
"""

from __future__ import annotations

import enum


class Advice(enum.StrEnum):
    """What the officer (or the subject) should do, in plain words."""

    PLACE_FINGER = "Place the finger on the glass."
    PLACE_FOUR = "Place all four fingers flat on the glass."
    PLACE_THUMBS = "Place both thumbs flat on the glass."
    TOO_MANY_FINGERS = "Only the fingers of this step should touch the glass."
    SPREAD_FINGERS = "Spread the fingers slightly so they do not touch each other."
    PRESS_HARDER = "Press a little harder."
    PRESS_LIGHTER = "Press a little more lightly."
    MOISTEN_FINGER = "The finger looks dry: breathe on it or moisten it slightly, then press again."
    DRY_FINGER = "The finger looks wet: wipe it dry, then press again."
    CLEAN_GLASS = "Clean the glass and the finger, then press again."
    MOVE_LEFT = "Move the finger to the left."
    MOVE_RIGHT = "Move the finger to the right."
    MOVE_UP = "Move the finger up (away from the subject)."
    MOVE_DOWN = "Move the finger down (towards the subject)."
    CENTRE_FINGER = "Place the finger in the middle of the glass."
    MORE_CONTACT = "Lay the finger flatter so more of it touches the glass."
    ROLL_WIDER = "Roll the finger fully from one nail edge to the other."
    HOLD_STILL = "Hold still."
    FEW_DETAILS = "Too few ridge details: clean the finger and the glass, then press evenly."
    PRESS_EVENLY = "Take the print again, pressing evenly."
    BLANK_IMAGE = "The image is blank: place the finger and capture again."
    DARK_IMAGE = "The image is black: clean the glass and check the scanner."
    NOT_A_FINGERPRINT = "No fingerprint was found in the image: capture the finger again."
    TOO_SMALL = "Too little of the finger was captured: capture it again, flat and in the middle."
    WRONG_RESOLUTION = "This image is not a full-resolution capture: capture the finger again."
    UNREADABLE = "The image could not be read: capture the finger again."
    NOT_MEASURED = "The print quality could not be measured: take the print again."
    CAPTURE_NOW = "Hold still: capturing now."

    @property
    def code(self) -> str:
        """Stable identifier for translations and telemetry."""
        return self.name


MOVE_FOR_HAND = {
    Advice.MOVE_LEFT: "Move the hand to the left.",
    Advice.MOVE_RIGHT: "Move the hand to the right.",
    Advice.MOVE_UP: "Move the hand up (away from the subject).",
    Advice.MOVE_DOWN: "Move the hand down (towards the subject).",
    Advice.CENTRE_FINGER: "Place the hand in the middle of the glass.",
}


def sentence(advice: Advice, *, hand: bool = False) -> str:
    """The text shown for ``advice``; slaps speak of the hand rather than the finger."""
    if hand and advice in MOVE_FOR_HAND:
        return MOVE_FOR_HAND[advice]
    return advice.value


def centring_advice(
    offset_x: float, offset_y: float, tolerance: float
) -> list[Advice]:
    """Moves that bring the print's centre to the platen's centre.

    ``offset_x``/``offset_y`` are the print centre minus the image centre, as fractions of the
    image width and height (positive: right of / below centre). The image shows the platen as
    the officer sees it: up is away from the subject.
    """
    moves: list[Advice] = []
    if offset_x > tolerance:
        moves.append(Advice.MOVE_LEFT)
    elif offset_x < -tolerance:
        moves.append(Advice.MOVE_RIGHT)
    if offset_y > tolerance:
        moves.append(Advice.MOVE_UP)
    elif offset_y < -tolerance:
        moves.append(Advice.MOVE_DOWN)
    return moves


def darkness_advice(ridge_mean: float, light: float, dark: float) -> Advice | None:
    """Pressure/moisture advice from the mean gray level over the print (0 black .. 255 white).

    Too light means too little pressure or dry skin; too dark means too much pressure or a wet
    finger, which fills the valleys.
    """
    if ridge_mean > light:
        return Advice.PRESS_HARDER
    if ridge_mean < dark:
        return Advice.PRESS_LIGHTER
    return None
