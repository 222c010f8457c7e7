"""The kiosk's websockets: the live preview (JPEG frames and the live checks) and events.

The preview loop itself lives in :mod:`appliance.capture.preview`; this router only carries
its messages: a frame as binary JPEG followed by its verdict as JSON, ``idle`` as text when
there is nothing to show, ``error: ...`` as text before closing on a scanner fault.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from appliance.capture.preview import PreviewFault, PreviewFrame, PreviewIdle
from appliance.web.services import Services


def router(services: Services) -> APIRouter:
    """The preview and event websockets."""
    api = APIRouter()

    @api.websocket("/ws/preview")
    async def preview(ws: WebSocket) -> None:
        """Live preview frames (JPEG), the live checks' verdict (JSON), and auto-capture."""
        await ws.accept()
        if services.preview is None:
            await ws.close(code=1011)
            return
        stream = services.preview().messages()
        try:
            async for message in stream:
                if isinstance(message, PreviewFrame):
                    await ws.send_bytes(message.jpeg)
                    await ws.send_json({"live": {"ok": message.ok, "reasons": message.reasons,
                                                 "message": message.message}})
                elif isinstance(message, PreviewIdle):
                    await ws.send_text("idle")
                elif isinstance(message, PreviewFault):
                    await ws.send_text(f"error: {message.message}")
                    await ws.close(code=1011)
                    return
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            await stream.aclose()

    @api.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        """Delivery, scanner and link events as JSON."""
        await ws.accept()
        queue = services.events.listen()
        try:
            while True:
                await ws.send_json(await queue.get())
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            services.events.forget(queue)

    return api
