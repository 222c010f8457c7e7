"""The live preview and auto-capture: what the officer sees while the finger is on the glass.

For the current step, preview frames come from the scanner's owner thread; each is checked by
the cheap live checks (:mod:`appliance.imaging.live`) and scaled to a JPEG for the kiosk. When
the checks hold for enough frames in a row, the step is captured as if the officer had pressed
the button. The loop yields typed messages and knows nothing of the transport that carries
them to the page.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from appliance.capture.booking import BookingService
from appliance.capture.sequence import Step
from appliance.domain import SLAP_FINGERS
from appliance.errors import CaptureError
from appliance.imaging.feedback import Advice
from appliance.imaging.live import AutoCapture, LiveChecker
from drivers.base import CaptureMode

log = logging.getLogger(__name__)

#: Longest side of a preview frame sent to the page (pixels).
PREVIEW_SIDE = 400
#: How often an idle preview says so (no step to capture, or a print awaiting review).
IDLE_INTERVAL_S = 0.2


@dataclass(frozen=True, slots=True)
class PreviewFrame:
    """One frame for the page with the live checks' verdict."""

    jpeg: bytes
    ok: bool
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    #: auto-capture's count: steady frames so far of the ``needed`` in a row (0 needed: off)
    steady: int = 0
    needed: int = 0
    #: the advice codes of ``reasons`` and of ``message`` (a translated page keys on them)
    codes: list[str] = field(default_factory=list)
    message_code: str = ""
    #: where the live checks found skin: (left, top, right, bottom) fractions of the frame, one
    #: per fingertip of a slap, else one around the print; ``aspect`` is the frame's height/width
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    aspect: float = 1.0
    #: a rolled step's progress: skin covered since the finger came down, and the width that
    #: fills the bar (0 for a flat step)
    rolled_mm: float = 0.0
    roll_target_mm: float = 0.0
    #: when the station had the frame from the scanner (Unix time): the page's latency anchor
    captured_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PreviewIdle:
    """Nothing to preview: no step to capture, or a print awaits accept or retake."""


@dataclass(frozen=True, slots=True)
class PreviewFault:
    """The scanner failed; the preview ends."""

    message: str


PreviewMessage = PreviewFrame | PreviewIdle | PreviewFault


def jpeg(image: np.ndarray, max_side: int) -> bytes:
    """A JPEG of ``image`` no larger than ``max_side`` on its longest side."""
    img = Image.fromarray(image)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def expected_fingers(step: Step, booking: BookingService) -> int | None:
    """Fingers the live checks should see on the platen for this step."""
    if not step.position.is_slap:
        return 1
    marked = booking.booking.annotations if booking.booking else {}
    present = [f for f in SLAP_FINGERS[step.position] if f not in marked]
    return len(present) or None


class PreviewLoop:
    """Frames and auto-capture for whichever step is current, until the viewer leaves."""

    def __init__(self, booking: BookingService, *, fps: float, auto_capture: bool,
                 auto_frames: int) -> None:
        self.booking = booking
        self.fps = fps
        self.auto_capture = auto_capture
        self.auto_frames = auto_frames
        self._capture_due = False  # the live checks held on the step just previewed

    async def messages(self) -> AsyncIterator[PreviewMessage]:
        """Preview messages, forever; a scanner fault is the last one."""
        booking = self.booking
        while True:
            step = booking.current_step
            if step is None or booking.pending is not None:
                await asyncio.sleep(IDLE_INTERVAL_S)
                yield PreviewIdle()
                continue
            try:
                async for message in self._step(step):
                    yield message
                if self._capture_due and booking.current_step is step and booking.pending is None:
                    await self._auto_capture(step)
            except CaptureError as exc:
                yield PreviewFault(str(exc))
                return

    async def _step(self, step: Step) -> AsyncIterator[PreviewFrame]:
        """Frames of one step until it is captured, changes, or the checks hold."""
        booking = self.booking
        self._capture_due = False
        checker = LiveChecker(expected_fingers(step, booking),
                              rolled=step.mode is CaptureMode.ROLLED)
        auto = AutoCapture(self.auto_frames)
        async for frame in booking.frames(step.mode, self.fps):
            captured_at = time.time()
            verdict = checker.check(frame.image, frame.ppi)
            decision = auto.feed(verdict)
            data = await asyncio.to_thread(jpeg, frame.image, PREVIEW_SIDE)
            self._capture_due = decision.capture and self.auto_capture
            # without auto-capture nothing is "capturing now": the officer presses Capture
            if self.auto_capture or not decision.capture:
                message = decision.message
                code = decision.codes[0] if decision.codes else Advice.CAPTURE_NOW.code
            else:
                message, code = Advice.HOLD_STILL.value, Advice.HOLD_STILL.code
            yield PreviewFrame(data, verdict.ok, list(verdict.reasons), message,
                               steady=decision.steady_frames if self.auto_capture else 0,
                               needed=self.auto_frames if self.auto_capture else 0,
                               codes=list(verdict.codes), message_code=code,
                               boxes=list(verdict.boxes),
                               aspect=frame.image.shape[0] / frame.image.shape[1],
                               rolled_mm=verdict.measures.get("rolled_mm", 0.0),
                               roll_target_mm=(checker.limits.roll_width_mm
                                               if checker.rolled else 0.0),
                               captured_at=captured_at)
            if self._capture_due or booking.current_step is not step or booking.pending is not None:
                return

    async def _auto_capture(self, step: Step) -> None:
        """The live checks held: capture as if the officer pressed the button."""
        try:
            await self.booking.capture()
        except CaptureError as exc:
            log.warning("auto-capture of %s failed: %s", step.position.label,
                        type(exc).__name__)
