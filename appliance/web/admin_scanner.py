"""The technician page's scanner tools: test capture, frame rate, counters, reconnect.

The test capture answers with the image itself and nothing keeps it; the page shows it to the
technician who put a finger on the platen. Every tool is audited and refused during a booking.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.capture.diagnostics import FRAME_RATE_MAX_S, ScannerBusy, ScannerTools
from appliance.web.desk import SIGNED_IN, Desk, Problem, unavailable
from appliance.web.services import Services
from appliance.web.sessions import Session

BUSY = {409: {"model": Problem, "description": "A booking is open, or there is no scanner."}}


class FrameRateTest(BaseModel):
    """How long to count preview frames."""

    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(3.0, ge=0.5, le=FRAME_RATE_MAX_S, allow_inf_nan=False)


class FrameRate(BaseModel):
    """Frames the scanner delivered."""

    frames: int
    seconds: float
    fps: float


def router(services: Services, desk: Desk) -> APIRouter:
    """Scanner diagnostics routes."""
    api = APIRouter()
    answers = {**SIGNED_IN, **BUSY, **unavailable("The scanner tools")}

    def tools() -> ScannerTools:
        if services.scanner_tools is None:
            raise HTTPException(503, "the scanner tools are not running")
        return services.scanner_tools

    async def audited(session: Session, test: str, detail: dict[str, Any]) -> None:
        if services.store is not None:
            await services.store.audit(f"technician:{session.user}", "scanner_test",
                                       {"test": test, **detail})

    @api.get("/api/admin/scanner", responses=answers)
    async def scanner_counters(_s: Session = desk.technician) -> dict[str, Any]:
        """The scanner's state and error counters."""
        return tools().counters()

    @api.post("/api/admin/scanner/test-capture", responses={
        **answers, 200: {"content": {"image/jpeg": {}},
                         "description": "The test capture, for the technician's eyes only."}})
    async def test_capture(session: Session = desk.technician) -> Response:
        """Capture one finger and show it (stored nowhere)."""
        try:
            image = await tools().test_capture()
        except ScannerBusy as exc:
            raise HTTPException(409, str(exc)) from exc
        await audited(session, "capture", {"bytes": len(image)})
        return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api.post("/api/admin/scanner/frame-rate", responses=answers)
    async def frame_rate(body: FrameRateTest, session: Session = desk.technician) -> FrameRate:
        """Count the preview frames the scanner delivers."""
        try:
            measured = await tools().frame_rate(body.seconds)
        except ScannerBusy as exc:
            raise HTTPException(409, str(exc)) from exc
        await audited(session, "frame-rate", measured)
        return FrameRate(**measured)

    @api.post("/api/admin/scanner/reconnect", responses=answers)
    async def reconnect(session: Session = desk.technician) -> dict[str, Any]:
        """Close the scanner and open it again."""
        try:
            counters = await tools().reconnect()
        except ScannerBusy as exc:
            raise HTTPException(409, str(exc)) from exc
        await audited(session, "reconnect", {})
        return counters

    @api.post("/api/admin/scanner/reset-counters", responses=answers)
    async def reset_counters(session: Session = desk.technician) -> dict[str, Any]:
        """Start the error counters from zero."""
        counters = tools().reset_counters()
        await audited(session, "reset-counters", {})
        return counters

    return api
