"""The kiosk's websockets: the live preview and the booking's events, for the officer only.

The preview loop itself lives in :mod:`appliance.capture.preview`; this router carries its
messages to the one signed-in kiosk session, one viewer at a time: a frame as a binary JPEG,
everything else as typed JSON (``{"type": "live" | "idle" | "fault", ...}``). A second
connection of the officer's own session (a reloaded page) takes the preview over from the
first, which is closed; a connection without the officer's session is closed at once, so no
other client can ever draw frames away from the officer's screen. Both streams end when the
screen locks or the officer signs out.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from appliance.capture.preview import PreviewFault, PreviewFrame, PreviewIdle
from appliance.web.officers import OfficerDesk
from appliance.web.services import Services
from appliance.web.sessions import Session

#: Close codes the page tells apart: not signed in / locked, and replaced by a newer viewer.
CLOSE_SIGNED_OUT = 4401
CLOSE_REPLACED = 4409
#: How long a new viewer waits for the old one's scanner stream to end.
HANDOVER_S = 30.0


@dataclass(slots=True)
class Viewer:
    """The one preview connection allowed at a time."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def router(services: Services, desk: OfficerDesk) -> APIRouter:
    """The preview and event websockets."""
    api = APIRouter()
    current: list[Viewer] = []

    async def admitted(ws: WebSocket) -> Session | None:
        session = desk.find(ws)
        if session is None or not desk.still_open(session):
            await ws.close(code=CLOSE_SIGNED_OUT, reason="sign in first")
            return None
        return session

    @api.websocket("/ws/preview")
    async def preview(ws: WebSocket) -> None:
        """Live preview frames (JPEG) and the live checks' verdict (JSON) to the officer."""
        session = await admitted(ws)
        if session is None:
            return
        if services.preview is None:
            await ws.close(code=1011)
            return
        for old in current:
            old.stop.set()
        for old in list(current):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(old.done.wait(), HANDOVER_S)
        viewer = Viewer()
        current[:] = [viewer]
        await ws.accept()
        stream = services.preview().messages()
        try:
            async for message in stream:
                if viewer.stop.is_set():
                    await ws.close(code=CLOSE_REPLACED, reason="another preview took over")
                    return
                if not desk.still_open(session):
                    await ws.close(code=CLOSE_SIGNED_OUT, reason="the screen is locked")
                    return
                if isinstance(message, PreviewFrame):
                    await ws.send_bytes(message.jpeg)
                    await ws.send_json({"type": "live", "ok": message.ok,
                                        "reasons": message.reasons, "message": message.message,
                                        "steady": message.steady, "needed": message.needed,
                                        "codes": message.codes,
                                        "message_code": message.message_code,
                                        "boxes": message.boxes, "aspect": message.aspect,
                                        "rolled_mm": round(message.rolled_mm, 1),
                                        "roll_target_mm": message.roll_target_mm,
                                        "captured_at": message.captured_at})
                elif isinstance(message, PreviewIdle):
                    await ws.send_json({"type": "idle"})
                elif isinstance(message, PreviewFault):
                    await ws.send_json({"type": "fault", "message": message.message})
                    await ws.close(code=1011)
                    return
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            await stream.aclose()
            viewer.done.set()
            if viewer in current:
                current.remove(viewer)

    @api.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        """Delivery, scanner and link events as JSON, to the officer's page."""
        session = await admitted(ws)
        if session is None:
            return
        await ws.accept()
        queue = services.events.listen()
        try:
            while desk.still_open(session):
                with contextlib.suppress(TimeoutError):
                    await ws.send_json(await asyncio.wait_for(queue.get(), 1.0))
            await ws.close(code=CLOSE_SIGNED_OUT, reason="the screen is locked")
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            services.events.forget(queue)

    return api
