"""``create_app(station)``: the kiosk API and page, the admin API and page, the live preview.

Handlers are thin: they call the capture session, the store and the uploader, and turn the
station's errors into plain messages for the person at the screen. The admin side shows health,
counters and the audit log; it never shows a print, a booking number or a subject's details.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from appliance.config import read_secret
from appliance.domain import SLAP_FINGERS, Annotation, Position
from appliance.errors import CaptureError, ConfigError, StationError
from appliance.imaging.live import AutoCapture, LiveChecker
from appliance.store.errors import DiskFull
from appliance.web.auth import parse_users, verify_password
from drivers.errors import ScannerError

if TYPE_CHECKING:
    from appliance.app import Station

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


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


def _jpeg(image: Any, max_side: int = 480) -> bytes:
    img = Image.fromarray(image)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _expected_fingers(position: Position, session: Any) -> int | None:
    """Fingers the live checks should see on the platen for this step."""
    if not position.is_slap:
        return 1
    marked = session.booking.annotations if session.booking else {}
    present = [f for f in SLAP_FINGERS[position] if f not in marked]
    return len(present) or None


async def _auto_capture(session: Any, step: Any) -> None:
    """The live checks held: capture as if the officer pressed the button."""
    if session.current_step is not step or session.pending is not None:
        return
    try:
        await session.capture()
    except (CaptureError, ScannerError) as exc:
        log.warning("auto-capture failed: %s", type(exc).__name__)


def create_app(station: Station) -> FastAPI:
    """Build the web app around a running station."""
    app = FastAPI(title="booking-station", version="0.1.0", docs_url="/api/docs",
                  redoc_url=None)

    @app.exception_handler(CaptureError)
    async def capture_error(_r: Request, exc: CaptureError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=409)

    @app.exception_handler(ScannerError)
    async def scanner_error(_r: Request, exc: ScannerError) -> JSONResponse:
        return JSONResponse({"error": f"scanner problem: {exc}"}, status_code=503)

    @app.exception_handler(DiskFull)
    async def disk_full(_r: Request, exc: DiskFull) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=507)

    @app.exception_handler(StationError)
    async def station_error(_r: Request, exc: StationError) -> JSONResponse:
        log.warning("web: request failed: %s", type(exc).__name__)
        return JSONResponse({"error": str(exc)}, status_code=500)

    def session() -> Any:
        if station.session is None:
            raise HTTPException(503, station.store_problem or "the station is not ready")
        return station.session

    # ---- kiosk ----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def kiosk_page() -> FileResponse:
        return FileResponse(STATIC / "kiosk.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            raise HTTPException(404)
        return FileResponse(path)

    @app.get("/api/kiosk")
    async def kiosk_state() -> dict[str, Any]:
        """Everything the kiosk screen shows."""
        s = station.session
        step = s.current_step if s else None
        bookings = await asyncio.to_thread(station.store.bookings, 20) if station.store else []
        return {
            "station": station.config.station.station_id,
            "state": s.state.value if s else "unavailable",
            "problem": station.store_problem,
            "booking": ({"booking_number": s.booking.booking_number,
                         "booking_id": s.booking.booking_id} if s and s.booking else None),
            "steps": s.progress() if s else [],
            "current": ({"position": int(step.position), "label": step.position.label,
                         "prompt": step.prompt, "mode": step.mode.value} if step else None),
            "pending": ({"position": int(s.pending.position), "retakes": s.pending.retakes,
                         "quality": s.inspection.as_dict() if s.inspection else None}
                        if s and s.pending else None),
            "scanner": station.worker.state.value if station.worker else "absent",
            "link": bool(station.link and station.link.connected),
            "clock": station.clock.value,
            "bookings": [
                {"booking_number": b.booking_number, "created_at": b.created_at,
                 "impressions": b.impressions, "state": b.state, "reason": b.reason,
                 "receipt": b.receipt, "clock_trusted": b.clock_trusted}
                for b in bookings
            ],
        }

    @app.post("/api/booking")
    async def start_booking(body: StartBooking) -> dict[str, str]:
        """Begin a booking."""
        booking = await session().start(
            body.booking_number,
            clock_trusted=station.clock.value == "synchronised",
        )
        return {"booking_id": booking.booking_id}

    @app.post("/api/capture")
    async def capture() -> dict[str, Any]:
        """Capture the current step."""
        imp = await session().capture()
        return {"position": int(imp.position), "retakes": imp.retakes,
                "width": int(imp.image.shape[1]), "height": int(imp.image.shape[0])}

    @app.get("/api/pending.jpg")
    async def pending_image() -> Response:
        """The captured print awaiting accept or retake (the officer's screen only)."""
        s = session()
        if s.pending is None:
            raise HTTPException(404, "no print waiting")
        data = await asyncio.to_thread(_jpeg, s.pending.image)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/accept")
    async def accept(body: Accept) -> dict[str, Any]:
        """Keep the captured print."""
        imp = await session().accept(body.override_reason)
        return {"accepted": int(imp.position)}

    @app.post("/api/retake")
    async def retake() -> dict[str, bool]:
        """Discard the captured print."""
        await session().retake()
        return {"ok": True}

    @app.post("/api/annotate")
    async def annotate(body: Annotate) -> dict[str, bool]:
        """Mark or clear XX / UP."""
        await session().annotate(Position(body.position), body.annotation)
        return {"ok": True}

    @app.post("/api/submit")
    async def submit(body: Submit | None = None) -> dict[str, str]:
        """Commit the booking and queue it for central."""
        done = await session().submit(confirm_sequence=bool(body and body.confirm_sequence))
        return {"booking_id": done.booking_id, "transaction_id": done.transaction_id}

    @app.post("/api/cancel")
    async def cancel() -> dict[str, bool]:
        """Abandon the booking in progress."""
        await session().cancel()
        return {"ok": True}

    @app.websocket("/ws/preview")
    async def preview(ws: WebSocket) -> None:
        """Live preview frames (JPEG), the live checks' verdict (JSON), and auto-capture."""
        await ws.accept()
        s = station.session
        if s is None or station.worker is None:
            await ws.close(code=1011)
            return
        try:
            while True:
                step = s.current_step
                if step is None or s.pending is not None:
                    await asyncio.sleep(0.2)
                    await ws.send_text("idle")
                    continue
                checker = LiveChecker(_expected_fingers(step.position, s),
                                      rolled=step.mode.value == "rolled")
                auto = AutoCapture(station.config.quality.auto_capture_frames)
                decision = None
                fps = station.config.web.preview_fps
                async for frame in station.worker.preview(step.mode, fps):
                    verdict = checker.check(frame.image, frame.ppi)
                    decision = auto.feed(verdict)
                    await ws.send_bytes(await asyncio.to_thread(_jpeg, frame.image, 400))
                    await ws.send_json({"live": {"ok": verdict.ok, "reasons": verdict.reasons,
                                                 "message": decision.message}})
                    if decision.capture and station.config.capture.auto_capture:
                        break
                    if s.current_step is not step or s.pending is not None:
                        break
                if (decision is not None and decision.capture
                        and station.config.capture.auto_capture
                        and s.current_step is step and s.pending is None):
                    await _auto_capture(s, step)
        except (WebSocketDisconnect, RuntimeError):
            return
        except ScannerError as exc:
            await ws.send_text(f"error: {exc}")
            await ws.close(code=1011)

    @app.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        """Delivery, scanner and link events as JSON."""
        await ws.accept()
        queue = station.events.listen()
        try:
            while True:
                await ws.send_json(await queue.get())
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            station.events.forget(queue)

    # ---- admin ----------------------------------------------------------------------------

    def technician(request: Request) -> str:
        header = request.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Basic realm="booking-station admin"'}
        if not header.startswith("Basic "):
            raise HTTPException(401, "login required", headers=challenge)
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(401, "bad credentials", headers=challenge) from exc
        try:
            users = parse_users(read_secret(station.config.web.admin_users_credential).decode())
        except ConfigError as exc:
            raise HTTPException(503, "no technician accounts are configured") from exc
        stored = users.get(user)
        dummy = "pbkdf2_sha256$1000$00$00"
        if not verify_password(password, stored or dummy) or stored is None:
            raise HTTPException(401, "bad credentials", headers=challenge)
        return user

    @app.get("/admin", include_in_schema=False)
    async def admin_page(_user: str = Depends(technician)) -> FileResponse:
        return FileResponse(STATIC / "admin.html")

    @app.get("/api/admin/health")
    async def admin_health(_user: str = Depends(technician)) -> dict[str, Any]:
        """Health at a glance, scanner and link counters. No subject data."""
        health = await asyncio.to_thread(station.health)
        chain = await asyncio.to_thread(station.store.verify_audit) if station.store else None
        worker = station.worker
        ident = worker.identity if worker else None
        return {
            "health": {f: getattr(health, f) for f in health.__slots__},
            "scanner": {
                "state": worker.state.value if worker else "absent",
                "vendor": ident.vendor if ident else None,
                "model": ident.model if ident else None,
                "counters": dataclasses.asdict(worker.counters) if worker else {},
            },
            "link": {
                "connected": bool(station.link and station.link.connected),
                "broker": f"{station.config.mqtt.host}:{station.config.mqtt.port}",
                "connects": station.link.counters.connects if station.link else 0,
                "last_error": station.link.counters.last_error if station.link else "",
                "paused": bool(station.uploader and station.uploader.paused),
                "inflight": station.uploader.inflight if station.uploader else 0,
            },
            "audit": {"ok": chain.ok, "entries": chain.entries, "head": chain.head,
                      "first_bad": chain.first_bad_seq} if chain else None,
            "store_problem": station.store_problem,
        }

    @app.get("/api/admin/audit")
    async def admin_audit(limit: int = 100, _user: str = Depends(technician)
                          ) -> list[dict[str, Any]]:
        """The newest audit entries (ids, actions, actors; never personal data)."""
        if station.store is None:
            return []

        def read(conn: Any) -> list[dict[str, Any]]:
            rows = conn.execute("SELECT seq, at, actor, action, detail FROM audit_log"
                                " ORDER BY seq DESC LIMIT ?", (min(limit, 1000),)).fetchall()
            return [dict(zip(("seq", "at", "actor", "action", "detail"), r, strict=True))
                    for r in rows]

        return await asyncio.to_thread(station.store.read, read)

    @app.post("/api/admin/sync/{action}")
    async def admin_sync(action: str, user: str = Depends(technician)) -> dict[str, Any]:
        """Manual sync controls: now, pause, resume."""
        up = station.uploader
        if up is None:
            raise HTTPException(503, "sync is not running")
        if action == "now":
            up.wake()
        elif action == "pause":
            up.pause()
        elif action == "resume":
            up.resume()
        else:
            raise HTTPException(404, "unknown sync action")
        if station.store is not None:
            await station.store.audit(f"technician:{user}", "remote_command",
                                      {"command": f"sync-{action}", "via": "admin page"})
        return {"paused": up.paused}

    @app.get("/api/health")
    async def liveness() -> dict[str, Any]:
        """Unauthenticated liveness for load balancers and the demo: no details."""
        return {"ok": station.store_problem is None,
                "scanner": station.worker.state.value if station.worker else "absent"}

    return app
