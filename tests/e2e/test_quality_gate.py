"""The quality gate in the capture flow: scores on every print, retakes, audited overrides."""

from __future__ import annotations

import pytest

from appliance.domain import Annotation, Position
from appliance.errors import CaptureError


async def test_every_print_is_scored_and_slaps_are_segmented(station_rig, loop_errors) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"})
    session = rig.station.booking
    await session.start("BK-Q1")
    await session.capture()
    inspection = session.inspection
    assert inspection.segmentation is not None
    assert {int(p) for p in inspection.fingers} == {2, 3, 4, 5}  # right slap, four fingers
    assert all(r.backend.startswith("nbis") for r in inspection.fingers.values())
    assert session.pending.quality is not None


async def test_below_threshold_needs_a_retake_or_an_audited_reason(station_rig,
                                                                   loop_errors) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"},
                            quality={"min_nfiq2_plain": 100, "retakes_before_override": 1})
    session = rig.station.booking
    await session.start("BK-Q2")
    await session.capture()
    verdict = session.inspection.verdict
    assert not verdict.passed and not verdict.override_allowed  # first attempt: retake
    with pytest.raises(CaptureError, match="Retake"):
        await session.accept()
    await session.retake()
    await session.capture()
    assert session.pending.retakes == 1
    assert session.inspection.verdict.override_allowed
    with pytest.raises(CaptureError, match="reason"):
        await session.accept()
    await session.accept(override_reason="scarred fingertips")

    def overrides(conn):
        return conn.execute("SELECT detail FROM audit_log WHERE action = 'quality_override'"
                            ).fetchall()

    [(detail,)] = rig.station.store.read(overrides)
    assert "scarred fingertips" in detail and '"position":13' in detail


async def test_no_override_where_policy_forbids(station_rig, loop_errors) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"},
                            quality={"min_nfiq2_plain": 100, "allow_override": False})
    session = rig.station.booking
    await session.start("BK-Q3")
    for _ in range(3):
        await session.capture()
        with pytest.raises(CaptureError, match="Retake"):
            await session.accept(override_reason="please")
        await session.retake()


async def test_dropped_prints_leave_nothing_behind(station_rig, loop_errors) -> None:
    """Retaken, superseded and cancelled prints are not kept after their booking ends.

    Each slap's inspection holds its finger crops (about half a megabyte); one kept per retake
    or cancelled booking would grow the station's memory for as long as it runs.
    """
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"},
                            quality={"min_nfiq2_plain": 0})
    station, session = rig.station, rig.station.booking

    async def kept() -> set[str]:
        await station.imaging.run(lambda: None)
        return station.processor.kept()

    await session.start("BK-KEEP-1")
    retaken = await session.capture()
    await session.retake()
    superseded = await session.capture()
    await session.capture()  # captured again without a retake: replaces the pending print
    accepted = await session.accept()
    assert await kept() == {accepted.impression_id}
    while session.current_step is not None:
        await session.capture()
        await session.accept()
    await session.submit()
    assert await kept() == set(), (retaken.impression_id, superseded.impression_id)

    await session.start("BK-KEEP-2")
    await session.capture()
    await session.annotate(Position.PLAIN_RIGHT_FOUR, Annotation.UNABLE_TO_PRINT)  # drops it
    await session.capture()
    await session.accept()
    await session.capture()
    await session.cancel()
    assert await kept() == set()


async def test_swapped_rolled_fingers_are_caught_at_submit(station_rig, loop_errors) -> None:
    """The subject rolls the right index where the right middle was asked for, and back."""
    rig = await station_rig(scanner={"faults": {"swap_positions": [[2, 3]]}},
                            quality={"min_nfiq2_plain": 0, "min_nfiq2_rolled": 0})
    session = rig.station.booking
    await session.start("BK-SWAP")
    assert await session.review_checks() is None  # nothing to judge before every print is in
    while session.current_step is not None:
        await session.capture()
        await session.accept()
    # the review screen shows the swapped pair before any submit is tried
    checks = await session.review_checks()
    assert checks is not None
    suspects = {(int(p.position), int(p.other)) for p in checks.suspects}
    assert suspects == {(2, 3), (3, 2)}, checks
    assert checks.as_dict()["suspects"][0]["reason"]
    with pytest.raises(CaptureError, match="sequence check") as caught:
        await session.submit()
    assert "right index" in str(caught.value) and "right middle" in str(caught.value)
    done = await session.submit(confirm_sequence=True)  # the officer looked and insists
    assert rig.station.store.outbox_state(done.transaction_id) in ("queued", "sending", "stored")

    def overrides(conn):
        return conn.execute("SELECT detail FROM audit_log WHERE action = 'quality_override'"
                            ).fetchall()

    assert any("sequence_flagged" in d for (d,) in rig.station.store.read(overrides))
