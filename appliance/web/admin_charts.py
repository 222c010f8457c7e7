"""The technician page's charts: the health history over 24 hours and 30 days, as columns.

The answer is shaped for the vendored charting library (uPlot): a list of x values (Unix
seconds) and one list per series. Figures only: counts, depths, scores.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from appliance.store import samples
from appliance.web.desk import SIGNED_IN, Desk, unavailable
from appliance.web.services import Services
from appliance.web.sessions import Session

#: Each span's length and the width of one bucket (seconds).
SPANS = {"day": (timedelta(hours=24), 600), "month": (timedelta(days=30), 86400)}


class History(BaseModel):
    """What the charts draw."""

    span: Literal["day", "month"]
    bucket_s: int
    outbox: dict[str, list[Any]]  # t, queue, drained, errors, reconnects
    bookings_per_day: dict[str, list[Any]]  # t, bookings
    nfiq2_by_position: dict[str, list[int]]  # position -> counts per band of 10


def router(services: Services, desk: Desk) -> APIRouter:
    """The history route."""
    api = APIRouter()

    @api.get("/api/admin/history", responses={**SIGNED_IN, **unavailable("The store")})
    async def history(span: Literal["day", "month"] = "day",
                      _s: Session = desk.technician) -> History:
        """Queue depth and drain, scanner errors and reconnects, bookings, NFIQ 2 bands."""
        store = services.store
        if store is None:
            raise HTTPException(503, services.problem() or "the store is not open")
        length, bucket = SPANS[span]
        since = datetime.now(UTC) - length
        days = max(1, length.days)

        def read(conn: Any) -> History:
            return History(span=span, bucket_s=bucket,
                           outbox=samples.series(conn, since, bucket),
                           bookings_per_day=samples.bookings_per_day(conn, days),
                           nfiq2_by_position=samples.nfiq2_by_position(conn, since))

        return await asyncio.to_thread(store.read, read)

    return api
