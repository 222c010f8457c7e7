"""The officer's kiosk: the page, its state, and the booking actions.

Every action goes to the booking service; this router only checks the request's shape and
answers with what the kiosk shows.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from appliance.capture.booking import BookingService
from appliance.capture.preview import jpeg
from appliance.domain import Annotation, Position
from appliance.web.services import Services

STATIC = Path(__file__).parent / "static"
#: What a file the pages load is called: no folders, no odd characters, a bounded length.
STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Longest side of the captured print shown for review (pixels).
REVIEW_SIDE = 480


class StartBooking(BaseModel):
    """Start a booking from its booking number."""

    booking_number: str = Field(min_length=1, max_length=32)


class Accept(BaseModel):
    """Keep the captured print, optionally overriding a quality gate with a reason."""

    override_reason: str | None = Field(None, max_length=200)


class Submit(BaseModel):
    """Submit the booking; ``confirm_sequence`` after the officer looked at a sequence warning."""

    confirm_sequence: bool = False


class Annotate(BaseModel):
    """Mark a position amputated (XX) or unable to print (UP); null clears it."""

    position: int = Field(ge=1, le=15)
    annotation: Annotation | None


def router(services: Services) -> APIRouter:
    """The kiosk's routes over the booking service."""
    api = APIRouter()

    def booking() -> BookingService:
        if services.booking is None:
            raise HTTPException(503, services.problem() or "the station is not ready")
        return services.booking

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
    async def kiosk_state() -> dict[str, Any]:
        """Everything the kiosk screen shows."""
        s = services.booking
        step = s.current_step if s else None
        bookings = await s.recent(20) if s else []
        return {
            "station": services.station.station_id,
            "state": s.state.value if s else "unavailable",
            "problem": services.problem(),
            "booking": ({"booking_number": s.booking.booking_number,
                         "booking_id": s.booking.booking_id} if s and s.booking else None),
            "steps": s.progress() if s else [],
            "current": ({"position": int(step.position), "label": step.position.label,
                         "prompt": step.prompt, "mode": step.mode.value} if step else None),
            "pending": ({"position": int(s.pending.position), "retakes": s.pending.retakes,
                         "quality": s.inspection.as_dict() if s.inspection else None}
                        if s and s.pending else None),
            "scanner": s.scanner_state if s else services.scanner().get("state", "absent"),
            "link": bool(services.sync and services.sync.link.connected),
            "clock": s.clock.value if s else "unknown",
            "bookings": [
                {"booking_number": b.booking_number, "created_at": b.created_at,
                 "impressions": b.impressions, "state": b.state, "reason": b.reason,
                 "receipt": b.receipt, "clock_trusted": b.clock_trusted}
                for b in bookings
            ],
        }

    @api.post("/api/booking")
    async def start_booking(body: StartBooking) -> dict[str, str]:
        """Begin a booking."""
        started = await booking().start(body.booking_number)
        return {"booking_id": started.booking_id}

    @api.post("/api/capture")
    async def capture() -> dict[str, Any]:
        """Capture the current step."""
        imp = await booking().capture()
        return {"position": int(imp.position), "retakes": imp.retakes,
                "width": int(imp.image.shape[1]), "height": int(imp.image.shape[0])}

    @api.get("/api/pending.jpg")
    async def pending_image() -> Response:
        """The captured print awaiting accept or retake (the officer's screen only)."""
        s = booking()
        if s.pending is None:
            raise HTTPException(404, "no print waiting")
        data = await asyncio.to_thread(jpeg, s.pending.image, REVIEW_SIDE)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api.post("/api/accept")
    async def accept(body: Accept) -> dict[str, Any]:
        """Keep the captured print."""
        imp = await booking().accept(body.override_reason)
        return {"accepted": int(imp.position)}

    @api.post("/api/retake")
    async def retake() -> dict[str, bool]:
        """Discard the captured print."""
        await booking().retake()
        return {"ok": True}

    @api.post("/api/annotate")
    async def annotate(body: Annotate) -> dict[str, bool]:
        """Mark or clear XX / UP."""
        await booking().annotate(Position(body.position), body.annotation)
        return {"ok": True}

    @api.post("/api/submit")
    async def submit(body: Submit | None = None) -> dict[str, str]:
        """Commit the booking and queue it for central."""
        done = await booking().submit(confirm_sequence=bool(body and body.confirm_sequence))
        return {"booking_id": done.booking_id, "transaction_id": done.transaction_id}

    @api.post("/api/cancel")
    async def cancel() -> dict[str, bool]:
        """Abandon the booking in progress."""
        await booking().cancel()
        return {"ok": True}

    @api.get("/api/health")
    async def liveness() -> dict[str, Any]:
        """Unauthenticated liveness for load balancers and the demo: no details."""
        return {"ok": services.problem() is None,
                "scanner": services.scanner().get("state", "absent")}

    return api
