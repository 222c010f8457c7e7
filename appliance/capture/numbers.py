"""The booking number, checked as the officer types it: what the profile allows, and repeats.

A number the transaction cannot carry (a character outside the profile's set, too long) is
refused at the start of the booking, never at submit after thirteen prints. A number already
used for a booking taken today, or one central already holds, is allowed but comes with a
warning: a second booking of the same arrest is usually a mistake, sometimes a re-print.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.domain import Booking
from appliance.phrase import Phrase
from appliance.records.profile import Profile, booking_number_problems
from appliance.store.store import BookingSummary, Store

#: How many of the newest committed bookings are searched for a repeated number.
REPEAT_SCAN = 1000
DELIVERY_WORDS = {"queued": "queued", "sending": "sending", "stored": "held by central",
                  "rejected": "rejected by central"}


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """What the kiosk shows under the booking number field."""

    problems: list[str] = field(default_factory=list)  # the booking cannot start
    warnings: list[str] = field(default_factory=list)  # it can, after the officer has read them

    @property
    def ok(self) -> bool:
        """Whether a booking may start with this number."""
        return not self.problems


async def check_booking_number(store: Store, profile: Profile, number: str,
                               current: Booking | None = None,
                               today: datetime | None = None) -> NumberCheck:
    """The problems and warnings of ``number`` for a new booking."""
    problems = booking_number_problems(profile, number)
    if problems:
        return NumberCheck(problems)
    warnings = []
    if current is not None and current.booking_number == number:
        warnings.append(Phrase(f"{number} is the booking in progress on this station.",
                               "number_in_progress", number=number))
    summaries = await asyncio.to_thread(store.bookings, REPEAT_SCAN)
    day = (today or datetime.now(UTC)).date().isoformat()
    for summary in summaries:
        if summary.booking_number == number and _counts(summary, day):
            warnings.append(_repeat_warning(summary, day))
    return NumberCheck(warnings=warnings)


def _counts(summary: BookingSummary, day: str) -> bool:
    return summary.created_at.startswith(day) or summary.state == "stored"


def _repeat_warning(summary: BookingSummary, day: str) -> Phrase:
    today = summary.created_at.startswith(day)
    when = "today at " + summary.created_at[11:16] if today else "on " + summary.created_at[:10]
    state = DELIVERY_WORDS.get(summary.state, summary.state)
    return Phrase(f"{summary.booking_number} was already booked {when} ({summary.impressions} "
                  f"prints, {state}). Check the number before you go on.",
                  "number_repeat_today" if today else "number_repeat_on",
                  number=summary.booking_number, time=summary.created_at[11:16],
                  date=summary.created_at[:10], prints=summary.impressions, state=summary.state)
