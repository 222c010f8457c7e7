"""What the officer's screen shows, and the one event stream that keeps it current.

The page renders one JSON view of the station and the booking in progress. It arrives over a
server-sent event stream (``GET /api/kiosk/stream``): a new view whenever it changes (the
booking's steps, a capture, the scanner, the central link, a delivery), and ``locked`` when
the screen locks, so the page never polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from appliance.phrase import wording
from appliance.web.officers import OfficerDesk
from appliance.web.services import Services
from appliance.web.sessions import Session

#: How often the stream looks for a change of the view (seconds).
STREAM_TICK_S = 0.25
#: How often the list of today's bookings is read again without a delivery event (seconds).
BOOKINGS_REFRESH_S = 5.0
#: A comment line this often keeps proxies and the browser from closing an idle stream.
KEEPALIVE_S = 15.0
RECENT_BOOKINGS = 20


def screen(services: Services, officer: str) -> dict[str, Any]:
    """The view of the station and the booking in progress (without the bookings list)."""
    s = services.booking
    step = s.current_step if s else None
    return {
        "station": services.station.station_id,
        "officer": officer,
        "state": s.state.value if s else "unavailable",
        "problem": services.problem(),
        "notices": (notices := services.notices()),
        "notice_words": [wording(n) for n in notices],
        "booking": ({"booking_number": s.booking.booking_number,
                     "booking_id": s.booking.booking_id} if s and s.booking else None),
        "steps": s.progress() if s else [],
        "redo": int(s.redoing) if s and s.redoing else None,
        "annotations": ({int(p): a.value for p, a in s.booking.annotations.items()}
                        if s and s.booking else {}),
        "sharing": sharing(services),
        "current": ({"position": int(step.position), "label": step.position.label,
                     "prompt": step.prompt, "mode": step.mode.value} if step else None),
        "pending": ({"position": int(s.pending.position), "retakes": s.pending.retakes,
                     "impression_id": s.pending.impression_id,
                     "quality": s.inspection.as_dict() if s.inspection else None}
                    if s and s.pending else None),
        "scanner": s.scanner_state if s else services.scanner().get("state", "absent"),
        "link": bool(services.sync and services.sync.link.connected),
        "clock": s.clock.value if s else "unknown",
    }


def sharing(services: Services) -> list[dict[str, Any]]:
    """Where central passes the booking on, and why (the sharing manifest)."""
    if services.sync is None:
        return []
    return [{"name": d.name, "purpose": d.purpose, "mandatory": d.mandatory}
            for d in services.sync.sharing.destinations]


async def bookings(services: Services) -> list[dict[str, Any]]:
    """The newest committed bookings with their delivery state."""
    if services.booking is None:
        return []
    return [
        {"booking_number": b.booking_number, "created_at": b.created_at,
         "impressions": b.impressions, "state": b.state, "reason": b.reason,
         "receipt": b.receipt, "clock_trusted": b.clock_trusted}
        for b in await services.booking.recent(RECENT_BOOKINGS)
    ]


async def stream(services: Services, desk: OfficerDesk, session: Session
                 ) -> AsyncIterator[str]:
    """Server-sent events: the view whenever it changes; ``locked`` when the screen locks."""
    queue = services.events.listen()
    last = ""
    listed: list[dict[str, Any]] | None = None
    listed_at = sent_at = 0.0
    news = False
    try:
        while True:
            if not desk.still_open(session):
                yield "event: locked\ndata: {}\n\n"
                return
            now = time.monotonic()
            if listed is None or news or now - listed_at > BOOKINGS_REFRESH_S:
                listed, listed_at = await bookings(services), now
            view = json.dumps({**screen(services, session.user), "bookings": listed})
            if view != last:
                last, sent_at = view, now
                yield f"data: {view}\n\n"
            elif now - sent_at > KEEPALIVE_S:
                sent_at = now
                yield ": keepalive\n\n"
            news = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), STREAM_TICK_S)
                news = True
    finally:
        services.events.forget(queue)
