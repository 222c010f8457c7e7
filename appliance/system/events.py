"""A small fan-out of station events (scanner state, delivery, alerts) to whoever listens.

The kiosk page's event stream and the technician page listen; the booking service, the sync
service and the scanner worker publish. Everything runs on the event loop; owner threads hand
their events over with ``loop.call_soon_threadsafe(events.publish, ...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

#: Events a listener may hold before the oldest is dropped (a slow page must not grow memory).
LISTENER_BACKLOG = 100


@dataclass(slots=True)
class Events:
    """Publish to every listener queue; slow listeners lose their oldest events."""

    listeners: list[asyncio.Queue[dict[str, Any]]] = field(default_factory=list)

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event to every listener (slow listeners lose the oldest)."""
        for q in self.listeners:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        """A new listener queue."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=LISTENER_BACKLOG)
        self.listeners.append(q)
        return q

    def forget(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Drop a listener."""
        with contextlib.suppress(ValueError):
            self.listeners.remove(q)
