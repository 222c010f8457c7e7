"""The booking workflow: start, capture, accept, retake, annotate, submit, cancel.

One booking at a time, owned by the event loop. The scanner is touched only through its owner
thread (:class:`drivers.worker.DeviceWorker`), image work runs on the imaging thread
(:class:`ImagingThread`), writes go through the store's writer; this service only sequences
them and applies the station's policies: the quality gate and its audited overrides, the
sequence and duplicate checks at submit, the clock's trust stamped on every booking, and an
audit entry for every step. Every accepted print is in the draft store before the kiosk shows
it as accepted; a submitted booking is committed before :meth:`BookingService.submit` returns,
and whoever wants to know (the sync service) is told through :attr:`BookingService.committed`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from appliance.capture.inspection import Inspection
from appliance.capture.lookup import lookup_subject
from appliance.capture.numbers import NumberCheck, check_booking_number
from appliance.capture.processing import BookingProcessor
from appliance.capture.sequence import SEQUENCES, Step
from appliance.capture.subject import form_from_subject, subject_from_form
from appliance.domain import SLAP_FINGERS, Annotation, Booking, Impression, Position, Subject
from appliance.errors import CaptureError, ScannerUnavailable
from appliance.imaging.matching import Duplicate, SequenceReport
from appliance.phrase import Phrase
from appliance.records.descriptors import check_descriptors
from appliance.records.profile import Profile, booking_number_problems, get_profile
from appliance.store.drafts import DraftStore
from appliance.store.store import BookingSummary, Store
from appliance.system.clock import ClockTrust
from appliance.system.events import Events
from drivers.base import CaptureMode, Frame
from drivers.errors import ScannerError
from drivers.worker import DeviceWorker

log = logging.getLogger(__name__)

T = TypeVar("T")
OFFICER = "officer"


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


@dataclass(frozen=True, slots=True)
class SuspectPair:
    """Two positions the checks tie together.

    A rolled print that looks like another finger (``other`` is None when it matched no
    finger at all), or two prints of one finger.
    """

    position: Position
    other: Position | None
    reason: str


@dataclass(frozen=True, slots=True)
class ReviewChecks:
    """What the review screen shows of the sequence and duplicate checks."""

    suspects: list[SuspectPair]
    unconfirmed: list[Position]  # rolled prints neither confirmed nor suspect: not blocking

    def as_dict(self) -> dict[str, Any]:
        """The JSON the kiosk reads."""
        return {"suspects": [{"position": int(p.position),
                              "other": int(p.other) if p.other is not None else None,
                              "reason": p.reason} for p in self.suspects],
                "unconfirmed": [int(p) for p in self.unconfirmed]}


class ImagingThread:
    """The one thread for image work (NFIQ 2, segmentation, minutiae, WSQ, matching).

    numpy, onnxruntime and the NIST tools release the GIL, so the loop and the preview keep
    running while a print is checked.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imaging")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the imaging thread and wait for it."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` on the imaging thread; nobody waits for it."""
        self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        """Finish queued work and end the thread."""
        self._pool.shutdown(wait=True)


@dataclass(slots=True)
class BookingService:
    """The booking the officer is taking now, step by step, and its submit."""

    worker: DeviceWorker
    store: Store
    processor: BookingProcessor
    imaging: ImagingThread
    events: Events
    sequence: str = "tenprint"
    clock: ClockTrust = ClockTrust.UNKNOWN
    #: Called with the transaction id of every committed booking (the sync service wakes up).
    committed: list[Callable[[str], None]] = field(default_factory=list)
    #: The officer signed in at the kiosk: named by every audit entry of the booking's steps.
    operator: str = ""
    #: Where the agency's booking system leaves subject details (None: no look-up).
    lookup_dir: Path | None = None
    booking: Booking | None = None
    pending: Impression | None = None
    inspection: Inspection | None = None  # what the officer is shown about the pending print
    state: SessionState = SessionState.IDLE
    drafts: DraftStore = field(init=False)
    steps: tuple[Step, ...] = field(init=False)
    _retakes: dict[Position, int] = field(default_factory=dict)
    _redo: Position | None = None  # an accepted print the officer takes again
    _finger_scores: dict[Position, dict[int, int | None]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The last sequence and duplicate checks, with the prints they judged (one run serves the
    #: review screen and the submit while nothing was retaken)
    _checked: tuple[tuple[Any, ...], tuple[SequenceReport | None, list[Duplicate]]] | None = None

    def __post_init__(self) -> None:
        self.drafts = DraftStore(self.store)
        self.steps = SEQUENCES[self.sequence]

    # ---- what the kiosk shows -------------------------------------------------------------

    @property
    def clock_trusted(self) -> bool:
        """Whether booking times can be trusted (the kernel clock is synchronised)."""
        return self.clock is ClockTrust.SYNCHRONISED

    @property
    def scanner_state(self) -> str:
        """The scanner's state in plain words (ready, disconnected, ...)."""
        return self.worker.state.value

    @property
    def current_step(self) -> Step | None:
        """The print being taken again, else the first step not yet accepted or annotated.

        A slap whose fingers are all annotated XX or UP has nothing left to take.
        """
        if self.booking is None:
            return None
        if self._redo is not None:
            return next(s for s in self.steps if s.position == self._redo)
        marked = set(self.booking.annotations)
        done = {i.position for i in self.booking.impressions} | marked
        for step in self.steps:
            fingers = set(SLAP_FINGERS.get(step.position, ()))
            if step.position not in done and not (fingers and fingers <= marked):
                return step
        return None

    @property
    def redoing(self) -> Position | None:
        """The accepted print being taken again, if any (the old one stays until accepted)."""
        return self._redo

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
                "nfiq2": imp.quality.nfiq2 if imp and imp.quality else None,
                "fingers": self._finger_scores.get(step.position, {}) if imp else {},
                "override": imp.override_reason if imp else None,
            })
        return out

    @property
    def profile(self) -> Profile:
        """The agency profile the booking's transaction is built for."""
        return get_profile(self.processor.originator.profile)

    async def check_number(self, booking_number: str) -> NumberCheck:
        """Whether a booking can start with this number, and what the officer should know."""
        return await check_booking_number(self.store, self.profile, booking_number, self.booking)

    async def recent(self, limit: int = 20) -> list[BookingSummary]:
        """The newest committed bookings with their delivery state."""
        return await asyncio.to_thread(self.store.bookings, limit)

    # ---- start-up -------------------------------------------------------------------------

    async def resume_draft(self) -> bool:
        """Take up the newest booking in progress found on disk; True when there was one."""
        found = await asyncio.to_thread(self.drafts.load)
        if not found:
            return False
        self.booking = found[-1]
        self.state = SessionState.READY if self.current_step is None else SessionState.CAPTURING
        log.info("capture: resumed a booking in progress with %d accepted prints",
                 len(self.booking.impressions))
        return True

    # ---- officer actions ------------------------------------------------------------------

    async def start(self, booking_number: str, subject: Subject | None = None) -> Booking:
        """Begin a booking; its draft is on disk before this returns."""
        async with self._lock:
            if self.booking is not None:
                raise CaptureError(Phrase(
                    "a booking is already in progress; submit or cancel it first", "in_progress"))
            number = booking_number.strip()
            problems = booking_number_problems(self.profile, number)
            if problems:
                raise CaptureError(problems[0] if len(problems) == 1 else " ".join(problems))
            self.store.check_space()  # DiskFull: refused before the officer takes a print
            booking = Booking(booking_number=number, subject=subject or Subject(),
                              clock_trusted=self.clock_trusted)
            await self.drafts.begin(booking)
            self.booking = booking
            self._retakes = {}
            self._redo = None
            self._finger_scores = {}
            self.state = SessionState.CAPTURING
            await self._audit("booking_started", {"booking_id": booking.booking_id})
            await self._guide()
            return booking

    async def capture(self) -> Impression:
        """Capture the current step; the print waits for accept or retake."""
        async with self._lock:
            step = self._require_step()
            frame = await self._scanner(self.worker.capture(step.mode))
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
            annotations = dict(self.booking.annotations) if self.booking else {}
            self.inspection = await self.imaging.run(self.processor.inspect, pending,
                                                     annotations, retakes)
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
            verdict = self.inspection.verdict if self.inspection is not None else None
            if verdict is not None and not verdict.passed:
                if not verdict.override_allowed:
                    raise CaptureError(f"{verdict.message} Retake the print.")
                if not (override_reason or "").strip():
                    raise CaptureError(f"{verdict.message} Retake, or accept with a reason.")
            else:
                override_reason = None
            imp.override_reason = override_reason
            await self.drafts.accept(self.booking, imp)
            self._drop([i for i in self.booking.impressions if i.position == imp.position])
            self.booking.impressions = [
                i for i in self.booking.impressions if i.position != imp.position
            ] + [imp]
            if self.inspection is not None:
                self._finger_scores[imp.position] = {
                    int(p): r.nfiq2 for p, r in self.inspection.fingers.items()}
            if self._redo == imp.position:
                self._redo = None
            self.pending = None
            self.inspection = None
            # worked on while the officer takes the next print; submit redoes what failed
            self.imaging.submit(self.processor.prepare, imp, dict(self.booking.annotations))
            await self._audit("capture", {"booking_id": self.booking.booking_id,
                                          "position": int(imp.position), "retakes": imp.retakes})
            if override_reason:
                await self._audit("quality_override", {"booking_id": self.booking.booking_id,
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

    async def describe(self, values: dict[str, str]) -> dict[str, str]:
        """Set the subject's details from the kiosk's form; returns problems by mnemonic.

        Nothing is kept while any value is wrong; what is kept is in the draft on return.
        """
        async with self._lock:
            if self.booking is None:
                raise CaptureError("no booking in progress")
            problems = check_descriptors(self.profile, values, complete=False)
            if problems:
                return problems
            self.booking.subject = subject_from_form(self.profile, values)
            await self.drafts.describe(self.booking)
            return {}

    async def look_up(self) -> dict[str, str] | None:
        """The subject's details the booking system left for this booking, unchecked, or None."""
        if self.booking is None or self.lookup_dir is None:
            return None
        return await asyncio.to_thread(lookup_subject, self.lookup_dir,
                                       self.booking.booking_number)

    def described(self) -> dict[str, str]:
        """The subject's details as the form shows them (the officer's screen only)."""
        return form_from_subject(self.profile, self.booking.subject) if self.booking else {}

    async def redo(self, position: Position) -> None:
        """Take an accepted print again; the accepted one stays until the new one is accepted."""
        async with self._lock:
            if self.booking is None:
                raise CaptureError("no booking in progress")
            if position not in {i.position for i in self.booking.impressions}:
                raise CaptureError(f"the {position.label} print is not taken yet")
            if self.pending is not None:
                raise CaptureError("accept or retake the print on screen first")
            self._redo = position
            self._retakes[position] = self._retakes.get(position, 0) + 1
            self.state = SessionState.CAPTURING
            await self._guide()

    async def keep(self) -> None:
        """Stop taking a print again and keep the one accepted before."""
        async with self._lock:
            if self._redo is None:
                return
            if self.pending is not None and self.pending.position == self._redo:
                self._drop([self.pending])
                self.pending = None
                self.inspection = None
            self._redo = None
            self.state = SessionState.CAPTURING if self.current_step else SessionState.READY
            await self._guide()

    async def annotate(self, position: Position, annotation: Annotation | None) -> list[str]:
        """Mark a finger amputated (XX) or unable to print (UP), or clear the mark.

        Returns what the officer should know: an accepted slap that shows the finger.
        """
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
                if self._redo == position:
                    self._redo = None
            mark = annotation.value if annotation else None
            await self._audit("annotation", {"booking_id": self.booking.booking_id,
                                             "position": int(position), "annotation": mark})
            self.state = SessionState.CAPTURING if self.current_step else SessionState.READY
            await self._guide()
            taken = {i.position for i in self.booking.impressions}
            return [Phrase(f"The {slap.label} slap was accepted with this finger on it: take "
                           "the slap again.", "retake_slap", position=int(slap))
                    for slap, fingers in SLAP_FINGERS.items()
                    if annotation is not None and position in fingers and slap in taken]

    async def review_checks(self) -> ReviewChecks | None:
        """The sequence and duplicate checks of the prints as they stand, for the review screen.

        None until every step is taken. Each suspect pair names both positions, so the officer
        sees the two prints side by side and retakes either.
        """
        booking = self.booking
        if booking is None or self.current_step is not None or self.pending is not None:
            return None
        sequence, duplicates = await self._checks(booking)
        pairs = []
        if sequence is not None:
            for position in sequence.flagged:
                result = sequence.results[position]
                pairs.append(SuspectPair(position, result.matched_position, result.reason))
        pairs += [SuspectPair(d.first, d.second, d.reason) for d in duplicates]
        return ReviewChecks(pairs, sequence.unconfirmed if sequence is not None else [])

    async def _checks(self, booking: Booking) -> tuple[SequenceReport | None, list[Duplicate]]:
        """The checks of ``booking``'s prints, run again only when a print changed."""
        key = (booking.booking_id,
               tuple((int(i.position), i.impression_id) for i in booking.impressions))
        if self._checked is not None and self._checked[0] == key:
            return self._checked[1]
        found = await self.imaging.run(self.processor.sequence, booking)
        self._checked = (key, found)
        return found

    async def submit(self, confirm_sequence: bool = False) -> Submitted:
        """Check, build and commit the booking; returns once it is stored and queued.

        The sequence and duplicate checks may refuse the booking (rolled prints that look like
        other fingers); ``confirm_sequence`` submits it anyway, after the officer has looked,
        and the override is audited.
        """
        async with self._lock:
            if self.booking is None:
                raise CaptureError("no booking in progress")
            if self._redo is not None:
                raise CaptureError(Phrase(
                    f"finish taking the {self._redo.label} print again, or keep the one "
                    "accepted before", "finish_redo", position=int(self._redo)))
            if self.current_step is not None:
                position = self.current_step.position
                raise CaptureError(Phrase(f"{position.label} is not captured yet",
                                          "not_captured", position=int(position)))
            if not self.booking.impressions:
                raise CaptureError("a booking needs at least one print")
            missing = check_descriptors(self.profile, self.described(), complete=True)
            if missing:
                raise CaptureError(Phrase(
                    "subject details: fill in " + ", ".join(sorted(missing)) + " before submit",
                    "subject_missing", fields=sorted(missing)))
            self.state = SessionState.SUBMITTING
            booking = self.booking
            try:
                transaction_id = await self._commit(booking, confirm_sequence)
            except BaseException:
                self.state = SessionState.READY
                raise
            self.booking = None
            self.pending = None
            self._redo = None
            self.state = SessionState.IDLE
            await self._guide()
            return Submitted(booking.booking_id, transaction_id)

    async def cancel(self) -> None:
        """Abandon the booking and its draft."""
        async with self._lock:
            if self.booking is not None:
                await self.drafts.discard(self.booking.booking_id)
                self._drop([*self.booking.impressions, self.pending])
                await self._audit("booking_cancelled", {"booking_id": self.booking.booking_id})
            self.booking = None
            self.pending = None
            self.inspection = None
            self._redo = None
            self.state = SessionState.IDLE
            await self._guide()

    # ---- the live preview -----------------------------------------------------------------

    async def frames(self, mode: CaptureMode, fps: float) -> AsyncIterator[Frame]:
        """Preview frames from the scanner's owner thread; scanner faults as ScannerUnavailable."""
        stream = self.worker.preview(mode, fps)
        try:
            while True:
                try:
                    frame = await anext(stream)
                except StopAsyncIteration:
                    return
                except ScannerError as exc:
                    raise ScannerUnavailable(str(exc)) from exc
                yield frame
        finally:
            await stream.aclose()

    # ---- helpers --------------------------------------------------------------------------

    async def _commit(self, booking: Booking, confirm_sequence: bool) -> str:
        """The submit policy: checks, the transaction, one atomic commit, then the news."""
        booking.clock_trusted = self.clock_trusted
        sequence, duplicates = await self._checks(booking)
        reasons = [sequence.results[p].reason for p in sequence.flagged] if sequence else []
        reasons += [d.reason for d in duplicates]
        if reasons:
            if not confirm_sequence:
                raise CaptureError(f"sequence check: {' '.join(reasons)} Retake those prints, or "
                                   "submit anyway if you are sure.")
            await self._audit("quality_override", {
                "booking_id": booking.booking_id,
                "sequence_flagged": [int(p) for p in sequence.flagged] if sequence else [],
                "duplicates": [[int(d.first), int(d.second)] for d in duplicates]})
        processed = await self.imaging.run(self.processor.build, booking)
        txid = await self.store.commit_booking(
            booking, processed.transaction, content_type=processed.content_type,
            templates=processed.templates, actor=self.actor,
        )
        self.imaging.submit(self.processor.forget, booking)
        self.events.publish({"type": "delivery", "transaction_id": txid, "state": "queued"})
        for listener in self.committed:
            listener(txid)
        return txid

    async def _scanner(self, work: Any) -> Frame:
        try:
            return await work
        except ScannerError as exc:
            raise ScannerUnavailable(str(exc)) from exc

    def _require_step(self) -> Step:
        step = self.current_step
        if self.booking is None or step is None:
            raise CaptureError("nothing to capture: start a booking first")
        return step

    def _drop(self, prints: list[Impression | None]) -> None:
        """Let go of what the imaging thread kept for prints that will never be submitted."""
        dropped = [p for p in prints if p is not None]
        if dropped:
            self.imaging.submit(self.processor.discard, dropped)

    async def _guide(self) -> None:
        step = self.current_step
        position = int(step.position) if step else 0
        try:
            await self.worker.call(lambda drv: drv.guide(position))
        except OSError as exc:  # a missing guide light never blocks a booking
            log.warning("capture: could not light the finger guide: %s", exc)

    @property
    def actor(self) -> str:
        """Who the audit names: the signed-in officer, or the bare role when none is known."""
        return f"{OFFICER}:{self.operator}" if self.operator else OFFICER

    async def _audit(self, action: str, detail: dict[str, Any]) -> None:
        await self.store.audit(self.actor, action, detail)
