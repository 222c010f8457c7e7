"""The booking the officer is taking now: steps, captures, retakes, annotations, submit.

Owned by the event loop. Captures run on the scanner's owner thread, image work on the imaging
thread, writes on the store writer; this object only sequences them. Every accepted print goes to
the draft store before the kiosk shows it as accepted.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from appliance.capture.sequence import SEQUENCES, Step
from appliance.domain import Annotation, Booking, Impression, Position, Subject
from appliance.errors import CaptureError
from appliance.store.drafts import DraftStore
from drivers.worker import DeviceWorker

log = logging.getLogger(__name__)


class SessionState(enum.StrEnum):
    """Where the booking stands."""

    IDLE = "idle"
    CAPTURING = "capturing"
    REVIEW = "review"  # a print is captured and waits for accept or retake
    READY = "ready"  # every step is captured or annotated
    SUBMITTING = "submitting"


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the officer sees after submit: the booking is on disk and queued."""

    booking_id: str
    transaction_id: str


Submitter = Callable[[Booking, bool], Awaitable[str]]
Inspect = Callable[[Impression, dict[Position, Annotation], int], Awaitable[Any]]


class CaptureSession:
    """One booking at a time, step by step."""

    def __init__(
        self,
        worker: DeviceWorker,
        drafts: DraftStore,
        submit: Submitter,
        *,
        sequence: str = "tenprint",
        audit: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None,
        inspect: Inspect | None = None,
        prepare: Callable[[Impression, dict[Position, Annotation]], None] | None = None,
        discard: Callable[[list[Impression]], None] | None = None,
    ) -> None:
        self.worker = worker
        self.drafts = drafts
        self._submit = submit
        self.steps: tuple[Step, ...] = SEQUENCES[sequence]
        self._audit = audit
        self.booking: Booking | None = None
        self.pending: Impression | None = None
        self.inspection: Any = None  # what the officer is shown about the pending print
        self._retakes: dict[Position, int] = {}
        self._inspect = inspect
        self._prepare = prepare
        self._discard = discard  # told of prints that will never be submitted
        self.state = SessionState.IDLE
        self._lock = asyncio.Lock()

    # ---- what the kiosk shows -------------------------------------------------------------

    @property
    def current_step(self) -> Step | None:
        """The first step with neither an accepted print nor an annotation."""
        if self.booking is None:
            return None
        done = {i.position for i in self.booking.impressions} | set(self.booking.annotations)
        for step in self.steps:
            if step.position not in done:
                return step
        return None

    def progress(self) -> list[dict[str, Any]]:
        """Each step with its state, for the kiosk."""
        out = []
        taken = {i.position: i for i in self.booking.impressions} if self.booking else {}
        notes = self.booking.annotations if self.booking else {}
        current = self.current_step
        for step in self.steps:
            imp = taken.get(step.position)
            out.append({
                "position": int(step.position),
                "label": step.position.label,
                "mode": step.mode.value,
                "state": ("annotated" if step.position in notes else
                          "accepted" if imp else
                          "current" if step is current else "todo"),
                "annotation": notes[step.position].value if step.position in notes else None,
                "retakes": imp.retakes if imp else 0,
            })
        return out

    # ---- officer actions ------------------------------------------------------------------

    async def start(self, booking_number: str, subject: Subject | None = None,
                    clock_trusted: bool = True) -> Booking:
        """Begin a booking; its draft is on disk before this returns."""
        async with self._lock:
            if self.booking is not None:
                raise CaptureError("a booking is already in progress; submit or cancel it first")
            number = booking_number.strip()
            if not number or len(number) > 32 or not number.isprintable():
                raise CaptureError("booking number must be 1 to 32 printable characters")
            booking = Booking(booking_number=number, subject=subject or Subject(),
                              clock_trusted=clock_trusted)
            await self.drafts.begin(booking)
            self.booking = booking
            self._retakes = {}
            self.state = SessionState.CAPTURING
            await self._guide()
            return booking

    def resume(self, booking: Booking) -> None:
        """Take up a draft found at start-up."""
        self.booking = booking
        self.state = SessionState.READY if self.current_step is None else SessionState.CAPTURING

    async def capture(self) -> Impression:
        """Capture the current step; the print waits for accept or retake."""
        async with self._lock:
            step = self._require_step()
            frame = await self.worker.capture(step.mode)
            if self.pending is not None and self.pending.position == step.position:
                self._retakes[step.position] = self._retakes.get(step.position, 0) + 1
            retakes = self._retakes.get(step.position, 0)
            pending = Impression(
                position=step.position,
                impression_type=step.impression_type,
                image=frame.image,
                ppi=frame.ppi,
                retakes=retakes,
            )
            self.inspection = (await self._inspect(pending, dict(self.booking.annotations),
                                                   retakes) if self._inspect else None)
            self._drop([self.pending])  # captured again without a retake: the new one replaces it
            self.pending = pending
            self.state = SessionState.REVIEW
            return pending

    async def accept(self, override_reason: str | None = None) -> Impression:
        """Keep the pending print: it is on disk when this returns."""
        async with self._lock:
            if self.booking is None or self.pending is None:
                raise CaptureError("no captured print to accept")
            imp = self.pending
            verdict = getattr(self.inspection, "verdict", None)
            if verdict is not None and not verdict.passed:
                if not verdict.override_allowed:
                    raise CaptureError(f"{verdict.message} Retake the print.")
                if not (override_reason or "").strip():
                    raise CaptureError(f"{verdict.message} Retake, or accept with a reason.")
            else:
                override_reason = None
            imp.override_reason = override_reason
            await self.drafts.accept(self.booking, imp)
            self.booking.impressions = [
                i for i in self.booking.impressions if i.position != imp.position
            ] + [imp]
            self.pending = None
            self.inspection = None
            if self._prepare is not None:
                self._prepare(imp, dict(self.booking.annotations))
            await self._log("capture", {"booking_id": self.booking.booking_id,
                                        "position": int(imp.position), "retakes": imp.retakes})
            if override_reason:
                await self._log("quality_override", {"booking_id": self.booking.booking_id,
                                                     "position": int(imp.position),
                                                     "reason": override_reason[:200]})
            self.state = SessionState.CAPTURING if self.current_step else SessionState.READY
            await self._guide()
            return imp

    async def retake(self) -> None:
        """Drop the pending print and capture the same step again."""
        async with self._lock:
            if self.pending is None:
                raise CaptureError("no captured print to retake")
            position = self.pending.position
            self._retakes[position] = self._retakes.get(position, 0) + 1
            self._drop([self.pending])
            self.pending = None
            self.inspection = None
            self.state = SessionState.CAPTURING

    async def annotate(self, position: Position, annotation: Annotation | None) -> None:
        """Mark a finger amputated (XX) or unable to print (UP), or clear the mark."""
        async with self._lock:
            if self.booking is None:
                raise CaptureError("no booking in progress")
            await self.drafts.annotate(self.booking, position, annotation)
            if annotation is None:
                self.booking.annotations.pop(position, None)
            else:
                self.booking.annotations[position] = annotation
                if self.pending is not None and self.pending.position == position:
                    self._drop([self.pending])
                    self.pending = None
                    self.inspection = None
            await self._log("annotation", {"booking_id": self.booking.booking_id,
                                           "position": int(position),
                                           "annotation": annotation.value if annotation else None})
            self.state = SessionState.CAPTURING if self.current_step else SessionState.READY
            await self._guide()

    async def submit(self, confirm_sequence: bool = False) -> Submitted:
        """Process and commit the booking; returns once it is stored and queued.

        The sequence check may refuse the booking (rolled prints that look like other fingers);
        ``confirm_sequence`` submits it anyway, after the officer has looked.
        """
        async with self._lock:
            if self.booking is None:
                raise CaptureError("no booking in progress")
            if self.current_step is not None:
                raise CaptureError(f"{self.current_step.position.label} is not captured yet")
            if not self.booking.impressions:
                raise CaptureError("a booking needs at least one print")
            self.state = SessionState.SUBMITTING
            booking = self.booking
            try:
                transaction_id = await self._submit(booking, confirm_sequence)
            except BaseException:
                self.state = SessionState.READY
                raise
            self.booking = None
            self.pending = None
            self.state = SessionState.IDLE
            await self._guide()
            return Submitted(booking.booking_id, transaction_id)

    async def cancel(self) -> None:
        """Abandon the booking and its draft."""
        async with self._lock:
            if self.booking is not None:
                await self.drafts.discard(self.booking.booking_id)
                self._drop([*self.booking.impressions, self.pending])
            self.booking = None
            self.pending = None
            self.inspection = None
            self.state = SessionState.IDLE
            await self._guide()

    # ---- helpers --------------------------------------------------------------------------

    def _require_step(self) -> Step:
        step = self.current_step
        if self.booking is None or step is None:
            raise CaptureError("nothing to capture: start a booking first")
        return step

    def _drop(self, prints: list[Impression | None]) -> None:
        """Let go of what was kept for prints that will never be submitted."""
        dropped = [p for p in prints if p is not None]
        if dropped and self._discard is not None:
            self._discard(dropped)

    async def _guide(self) -> None:
        step = self.current_step
        position = int(step.position) if step else 0
        try:
            await self.worker.call(lambda drv: drv.guide(position))
        except OSError as exc:  # a missing guide light never blocks a booking
            log.warning("capture: could not light the finger guide: %s", exc)

    async def _log(self, action: str, detail: dict[str, Any]) -> None:
        if self._audit is not None:
            await self._audit(action, detail)
