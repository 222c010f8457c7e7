"""The officer's kiosk: the page, sign-in, its state, and the booking actions.

Every action goes to the booking service; this router only checks the request's shape and the
officer's session (see :mod:`appliance.web.officers`), and answers with what the kiosk shows.
The page and its static files are public; everything else needs a signed-in, unlocked officer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from appliance.capture.booking import BookingService
from appliance.capture.preview import jpeg
from appliance.domain import Annotation, Position
from appliance.phrase import wording
from appliance.records import descriptors
from appliance.web import kiosk_view
from appliance.web.officers import OFFICER_ID_MAX, PIN_MAX, OfficerDesk, SignInRefused
from appliance.web.services import Services
from appliance.web.sessions import Session

STATIC = Path(__file__).parent / "static"
#: What a file the pages load is called: no folders, no odd characters, a bounded length.
STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Longest side of the captured print shown for review (pixels).
REVIEW_SIDE = 480
#: Longest side of an accepted print's thumbnail on the review screen (pixels).
THUMB_SIDE = 240


class SignIn(BaseModel):
    """An officer's id and PIN."""

    officer: str = Field(min_length=1, max_length=OFFICER_ID_MAX)
    pin: str = Field(min_length=1, max_length=PIN_MAX)


class StartBooking(BaseModel):
    """Start a booking from its booking number."""

    booking_number: str = Field(min_length=1, max_length=64)


class CheckNumber(BaseModel):
    """A booking number as the officer is typing it."""

    booking_number: str = Field(max_length=64)


class Describe(BaseModel):
    """The subject form's values by Type-2 mnemonic."""

    values: dict[Annotated[str, StringConstraints(max_length=8)],
                 Annotated[str, StringConstraints(max_length=100)]] = Field(max_length=40)


class Accept(BaseModel):
    """Keep the captured print, optionally overriding a quality gate with a reason."""

    override_reason: str | None = Field(None, max_length=200)


class Submit(BaseModel):
    """Submit the booking; ``confirm_sequence`` after the officer looked at a sequence warning."""

    confirm_sequence: bool = False


class Redo(BaseModel):
    """An accepted print to take again."""

    position: int = Field(ge=1, le=15)


class Annotate(BaseModel):
    """Mark a position amputated (XX) or unable to print (UP); null clears it."""

    position: int = Field(ge=1, le=15)
    annotation: Annotation | None


def _words(problems: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Code and figures of each field's problem, for a page that words them itself."""
    return {name: wording(text) for name, text in problems.items()}


def router(services: Services, desk: OfficerDesk) -> APIRouter:
    """The kiosk's routes over the booking service, behind the officer's sign-in."""
    api = APIRouter()

    async def acting(request: Request) -> AsyncIterator[Session]:
        """The officer doing something: the request keeps the screen unlocked until it ends."""
        session = desk.officer(request)
        if services.booking is not None:
            services.booking.operator = session.user
        desk.begin(session)  # a capture may take longer than the idle lock
        try:
            yield session
        finally:
            desk.end(session)

    def watching(request: Request) -> Session:
        """The officer's page reading state: never holds the screen open."""
        return desk.officer(request, activity=False)

    officer = Depends(acting)
    viewer = Depends(watching)

    def booking() -> BookingService:
        if services.booking is None:
            raise HTTPException(503, services.problem() or "the station is not ready")
        return services.booking

    @api.post("/api/kiosk/signin")
    async def sign_in(body: SignIn) -> Response:
        """Sign an officer in with id and PIN; the answer carries the session's CSRF token."""
        try:
            session = await desk.sign_in(body.officer.strip(), body.pin)
        except SignInRefused as exc:
            if exc.retry_after_s is None:
                return JSONResponse({"error": str(exc)}, status_code=401)
            return JSONResponse({"error": str(exc)}, status_code=429,
                                headers={"Retry-After": str(max(1, int(exc.retry_after_s)))})
        if services.booking is not None:
            services.booking.operator = session.user
        answer = JSONResponse({"officer": session.user, "csrf": session.csrf,
                               "idle_lock_s": desk.idle_lock_s})
        desk.sessions.set_cookie(answer, session)
        return answer

    @api.get("/api/kiosk/session")
    async def current_session(request: Request) -> dict[str, Any]:
        """Who is signed in on this browser, and whether the screen is locked (never 401)."""
        session = desk.find(request)
        if session is None:
            return {"officer": None, "locked": False, "csrf": None}
        return {"officer": session.user, "locked": session.locked,
                "csrf": None if session.locked else session.csrf,
                "idle_lock_s": desk.idle_lock_s}

    @api.post("/api/kiosk/signout")
    async def sign_out(session: Session = officer) -> Response:
        """End the officer's session; the booking in progress stays for the next sign-in."""
        await desk.sign_out(session)
        answer = JSONResponse({"ok": True})
        desk.sessions.clear_cookie(answer)
        return answer

    @api.post("/api/kiosk/activity")
    async def activity(_session: Session = officer) -> dict[str, bool]:
        """The officer touched the screen: keeps it unlocked."""
        return {"ok": True}

    @api.get("/", include_in_schema=False)
    async def kiosk_page() -> FileResponse:
        return FileResponse(STATIC / "kiosk.html")

    @api.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if not STATIC_NAME.fullmatch(name):
            raise HTTPException(404)
        path = STATIC / name
        if not path.is_file():
            raise HTTPException(404)
        return FileResponse(path)

    @api.get("/api/kiosk")
    async def kiosk_state(session: Session = viewer) -> dict[str, Any]:
        """Everything the kiosk screen shows, once (the page itself follows the stream)."""
        return {**kiosk_view.screen(services, session.user),
                "bookings": await kiosk_view.bookings(services)}

    @api.get("/api/kiosk/stream")
    async def kiosk_stream(session: Session = viewer) -> StreamingResponse:
        """The screen's view as server-sent events, whenever it changes."""
        return StreamingResponse(kiosk_view.stream(services, desk, session),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @api.post("/api/booking")
    async def start_booking(body: StartBooking, _s: Session = officer) -> dict[str, str]:
        """Begin a booking."""
        started = await booking().start(body.booking_number)
        return {"booking_id": started.booking_id}

    @api.post("/api/booking/check")
    async def check_number(body: CheckNumber, _s: Session = officer) -> dict[str, Any]:
        """Whether a booking can start with this number; warnings about repeats."""
        check = await booking().check_number(body.booking_number.strip())
        return {"ok": check.ok, "problems": check.problems, "warnings": check.warnings,
                "problem_words": [wording(p) for p in check.problems],
                "warning_words": [wording(w) for w in check.warnings]}

    @api.get("/api/subject")
    async def subject_form(_s: Session = viewer) -> dict[str, Any]:
        """The subject form from the profile's Type-2 fields, and what is filled in."""
        s = booking()
        return {"fields": [asdict(f) for f in descriptors.subject_form(s.profile)],
                "values": s.described(), "lookup": s.lookup_dir is not None}

    @api.post("/api/subject/check")
    async def subject_check(body: Describe, _s: Session = officer) -> dict[str, Any]:
        """What is wrong with the values as typed (nothing is kept)."""
        s = booking()
        problems = descriptors.check_descriptors(s.profile, body.values, complete=False)
        return {"problems": problems, "problem_words": _words(problems)}

    @api.post("/api/subject")
    async def subject_save(body: Describe, _s: Session = officer) -> dict[str, Any]:
        """Keep the subject's details (none kept while any value is wrong)."""
        problems = await booking().describe(body.values)
        return {"saved": not problems, "problems": problems, "problem_words": _words(problems)}

    @api.post("/api/subject/lookup")
    async def subject_lookup(_s: Session = officer) -> dict[str, Any]:
        """The subject's details from the agency's booking system, for the form to show."""
        found = await booking().look_up()
        if found is None:
            raise HTTPException(404, "the booking system has nothing for this booking number")
        return {"values": found}

    @api.post("/api/capture")
    async def capture(_s: Session = officer) -> dict[str, Any]:
        """Capture the current step."""
        imp = await booking().capture()
        return {"position": int(imp.position), "retakes": imp.retakes,
                "width": int(imp.image.shape[1]), "height": int(imp.image.shape[0])}

    @api.get("/api/pending.jpg")
    async def pending_image(_s: Session = viewer) -> Response:
        """The captured print awaiting accept or retake (the officer's screen only)."""
        s = booking()
        if s.pending is None:
            raise HTTPException(404, "no print waiting")
        data = await asyncio.to_thread(jpeg, s.pending.image, REVIEW_SIDE)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api.post("/api/accept")
    async def accept(body: Accept, _s: Session = officer) -> dict[str, Any]:
        """Keep the captured print."""
        imp = await booking().accept(body.override_reason)
        return {"accepted": int(imp.position)}

    @api.post("/api/retake")
    async def retake(_s: Session = officer) -> dict[str, bool]:
        """Discard the captured print."""
        await booking().retake()
        return {"ok": True}

    @api.post("/api/annotate")
    async def annotate(body: Annotate, _s: Session = officer) -> dict[str, Any]:
        """Mark or clear XX / UP; warns when an accepted slap shows the finger."""
        warnings = await booking().annotate(Position(body.position), body.annotation)
        return {"ok": True, "warnings": warnings,
                "warning_words": [wording(w) for w in warnings]}

    @api.post("/api/redo")
    async def redo(body: Redo, _s: Session = officer) -> dict[str, bool]:
        """Take an accepted print again (until submit)."""
        await booking().redo(Position(body.position))
        return {"ok": True}

    @api.post("/api/keep")
    async def keep(_s: Session = officer) -> dict[str, bool]:
        """Stop taking a print again; keep the one accepted before."""
        await booking().keep()
        return {"ok": True}

    @api.get("/api/print/{position}.jpg")
    async def accepted_image(position: int, _s: Session = viewer) -> Response:
        """An accepted print of the booking in progress, small, for the review screen."""
        s = booking()
        found = [i for i in (s.booking.impressions if s.booking else [])
                 if int(i.position) == position]
        if not found:
            raise HTTPException(404, "no such print")
        data = await asyncio.to_thread(jpeg, found[0].image, THUMB_SIDE)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api.get("/api/review-checks")
    async def review_checks(_s: Session = officer) -> dict[str, Any]:
        """The sequence and duplicate checks of the prints as they stand (once all are taken)."""
        found = await booking().review_checks()
        if found is None:
            raise HTTPException(409, "take every print first")
        return found.as_dict()

    @api.post("/api/submit")
    async def submit(body: Submit | None = None, _s: Session = officer) -> dict[str, str]:
        """Commit the booking and queue it for central."""
        done = await booking().submit(confirm_sequence=bool(body and body.confirm_sequence))
        return {"booking_id": done.booking_id, "transaction_id": done.transaction_id}

    @api.post("/api/cancel")
    async def cancel(_s: Session = officer) -> dict[str, bool]:
        """Abandon the booking in progress."""
        await booking().cancel()
        return {"ok": True}

    @api.get("/api/health")
    async def liveness() -> dict[str, Any]:
        """Unauthenticated liveness for load balancers and the demo: no details."""
        return {"ok": services.problem() is None,
                "scanner": services.scanner().get("state", "absent")}

    return api
