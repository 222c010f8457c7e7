"""The day's figures telemetry carries: bookings since midnight UTC and their NFIQ 2 median."""

from __future__ import annotations

from appliance.domain import QualityReport
from tests.store.conftest import make_booking


async def test_bookings_today_and_nfiq2_median_of_the_day(store) -> None:
    assert store.health().bookings_today == 0
    assert store.health().nfiq2_median_today is None
    for n, scores in enumerate(([40, 70], [55], [None, 90])):
        booking = make_booking(f"BK-{n}", prints=len(scores), seed=n)
        for impression, score in zip(booking.impressions, scores, strict=True):
            impression.quality = QualityReport(nfiq2=score)
        await store.commit_booking(booking, b"transaction")
    # yesterday's booking counts in neither figure
    old = make_booking("BK-old", prints=1, seed=9)
    old.impressions[0].quality = QualityReport(nfiq2=1)
    await store.commit_booking(old, b"transaction")
    await store.write(lambda c: c.execute(
        "UPDATE bookings SET committed_at = '2000-01-01T00:00:00+00:00'"
        " WHERE committed_at = (SELECT MAX(committed_at) FROM bookings)"))
    health = store.health()
    assert health.bookings == 4 and health.bookings_today == 3
    assert health.nfiq2_median_today == 62.5  # median of 40, 55, 70, 90
    assert health.disk_total_mb >= health.disk_free_mb > 0
