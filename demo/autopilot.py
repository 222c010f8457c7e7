"""Bookings taken unattended, through the same booking service the kiosk drives."""

from __future__ import annotations

import time

from appliance.capture.booking import BookingService
from appliance.errors import CaptureError


async def autopilot(booking: BookingService, count: int, officer: str = "autopilot"
                    ) -> list[str]:
    """Take ``count`` bookings as ``officer`` (named by the audit); returns transaction ids."""
    booking.operator = officer
    if booking.booking is not None:
        await booking.cancel()
    txids = []
    for n in range(count):
        await booking.start(f"DEMO-{int(time.time())}-{n + 1}")
        while booking.current_step is not None:
            await take_print(booking)
        try:
            done = await booking.submit()
        except CaptureError as exc:
            if not str(exc).startswith("sequence check"):
                raise
            print(f"autopilot: {exc} -- submitting anyway (audited)", flush=True)
            done = await booking.submit(confirm_sequence=True)
        txids.append(done.transaction_id)
        print(f"booking {n + 1}/{count} stored and queued (transaction {done.transaction_id})",
              flush=True)
    return txids


async def take_print(booking: BookingService, attempts: int = 3) -> None:
    """Capture the current step like a patient officer would.

    Retake up to ``attempts`` times, then accept the print with a recorded override reason
    (refused where the policy does not allow overrides).
    """
    for attempt in range(attempts):
        await booking.capture()
        verdict = booking.inspection.verdict if booking.inspection is not None else None
        if verdict is None or verdict.passed:
            await booking.accept()
            return
        if attempt < attempts - 1:
            await booking.retake()
    await booking.accept(override_reason=f"autopilot: best of {attempts} attempts")
