"""The booking workflow without a browser: every step, its audit entry, its draft on disk."""

from __future__ import annotations

import asyncio
import json

import pytest

from appliance.capture.booking import SessionState
from appliance.domain import Annotation, Position
from appliance.errors import CaptureError, ScannerUnavailable
from appliance.phrase import wording
from appliance.records.transaction import read_transaction
from appliance.store.drafts import DraftStore
from tests.conftest import until


def audit_actions(service) -> list[str]:
    return [e["action"] for e in reversed(service.store.audit_entries(100))]


async def test_a_flats_booking_from_start_to_commit(booking_factory, loop_errors) -> None:
    service = await booking_factory()
    committed: list[str] = []
    service.committed.append(committed.append)
    events = service.events.listen()
    booking = await service.start("  BK-100 ")
    assert booking.booking_number == "BK-100" and booking.clock_trusted
    assert service.state is SessionState.CAPTURING
    assert service.current_step.position is Position.PLAIN_RIGHT_FOUR
    while service.current_step is not None:
        pending = await service.capture()
        assert service.state is SessionState.REVIEW and service.inspection is not None
        assert service.inspection.report.nfiq2 is not None
        accepted = await service.accept()
        assert accepted is pending
        [draft] = await asyncio.to_thread(DraftStore(service.store).load)  # on disk already
        assert pending.position in {i.position for i in draft.impressions}
    assert service.state is SessionState.READY
    done = await service.submit()
    assert committed == [done.transaction_id]
    assert (await events.get()) == {"type": "delivery", "transaction_id": done.transaction_id,
                                    "state": "queued"}
    assert service.booking is None and service.state is SessionState.IDLE
    assert await asyncio.to_thread(DraftStore(service.store).load) == []
    assert service.store.outbox_state(done.transaction_id) == "queued"
    [summary] = await service.recent()
    assert summary.booking_number == "BK-100" and summary.impressions == 3
    assert audit_actions(service).count("capture") == 3


async def test_retake_counts_and_replaces_the_pending_print(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-101")
    first = await service.capture()
    await service.retake()
    assert service.pending is None and service.state is SessionState.CAPTURING
    second = await service.capture()
    assert second.retakes == 1 and second.impression_id != first.impression_id
    await service.accept()
    assert service.booking.impressions == [second]
    with pytest.raises(CaptureError, match="no captured print to retake"):
        await service.retake()


async def test_annotations_skip_a_step_and_can_be_cleared(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-102")
    await service.annotate(Position.PLAIN_RIGHT_FOUR, Annotation.AMPUTATED)
    assert service.current_step.position is Position.PLAIN_LEFT_FOUR
    [draft] = await asyncio.to_thread(DraftStore(service.store).load)
    assert draft.annotations == {Position.PLAIN_RIGHT_FOUR: Annotation.AMPUTATED}
    await service.annotate(Position.PLAIN_RIGHT_FOUR, None)
    assert service.current_step.position is Position.PLAIN_RIGHT_FOUR
    entries = [e for e in service.store.audit_entries(10) if e["action"] == "annotation"]
    assert [json.loads(e["detail"])["annotation"] for e in entries] == [None, "XX"]


async def test_what_the_state_does_not_allow_is_refused(booking_factory) -> None:
    service = await booking_factory()
    with pytest.raises(CaptureError, match="start a booking first"):
        await service.capture()
    with pytest.raises(CaptureError, match="no booking in progress"):
        await service.submit()
    with pytest.raises(CaptureError, match=r"not U\+0000"):
        await service.start("BK\x00")
    await service.start("BK-103")
    with pytest.raises(CaptureError, match="already in progress"):
        await service.start("BK-104")
    with pytest.raises(CaptureError, match="not captured yet"):
        await service.submit()


async def test_cancel_discards_the_draft(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-105")
    await service.capture()
    await service.accept()
    await service.cancel()
    assert service.booking is None and service.state is SessionState.IDLE
    assert await asyncio.to_thread(DraftStore(service.store).load) == []


async def test_a_restart_resumes_the_draft(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-106")
    await service.capture()
    await service.accept()
    again = await booking_factory(store=service.store)
    assert await again.resume_draft()
    assert again.booking.booking_number == "BK-106"
    assert again.current_step.position is Position.PLAIN_LEFT_FOUR


async def test_a_pulled_cable_is_a_scanner_error_and_loses_nothing(booking_factory) -> None:
    service = await booking_factory(faults={"unplug_after_captures": 1})
    await service.start("BK-107")
    await service.capture()
    await service.accept()
    with pytest.raises(ScannerUnavailable):
        await service.capture()
    assert [i.position for i in service.booking.impressions] == [Position.PLAIN_RIGHT_FOUR]
    assert service.scanner_state == "disconnected"


async def test_each_print_is_wsq_encoded_when_accepted(booking_factory, processor) -> None:
    """Submit carries the WSQ made while the officer took the next print, byte for byte."""
    service = await booking_factory(seed=17)
    booking = await service.start("BK-WSQ")
    while service.current_step is not None:
        await service.capture()
        await service.accept()
    await until(lambda: all(processor.prepared_wsq(i.impression_id)
                            for i in booking.impressions), what="WSQ of every accepted print")
    made = {i.position: processor.prepared_wsq(i.impression_id) for i in booking.impressions}
    done = await service.submit()
    read = read_transaction(await service.store.load_transaction(done.transaction_id))
    carried = {Position(int(r.text(13))): r.get(999) for _, r in read.of_type(14)}
    assert carried == made
    # let go on the imaging thread after the commit, not before submit returns
    await until(lambda: all(processor.prepared_wsq(i.impression_id) is None
                            for i in booking.impressions), what="the WSQ let go after submit")
async def test_an_accepted_print_is_taken_again_until_submit(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-110")
    first = await service.capture()
    await service.accept()
    await service.capture()
    await service.accept()
    await service.redo(Position.PLAIN_RIGHT_FOUR)
    assert service.current_step.position is Position.PLAIN_RIGHT_FOUR
    await service.capture()
    await service.keep()  # the officer changed their mind: the accepted print stays
    assert service.pending is None and service.current_step.position is Position.PLAIN_THUMBS
    assert [i for i in service.booking.impressions if i.position == 13] == [first]
    await service.redo(Position.PLAIN_RIGHT_FOUR)
    with pytest.raises(CaptureError, match="finish taking"):
        await service.submit()
    again = await service.capture()
    await service.accept()
    assert [i for i in service.booking.impressions if i.position == 13] == [again]
    assert again.retakes >= 1 and service.current_step.position is Position.PLAIN_THUMBS
    drafts = await asyncio.to_thread(DraftStore(service.store).load)
    kept = {i.position: i.impression_id for i in drafts[0].impressions}
    assert kept[Position.PLAIN_RIGHT_FOUR] == again.impression_id  # the draft holds the new one
    with pytest.raises(CaptureError, match="not taken yet"):
        await service.redo(Position.PLAIN_THUMBS)


async def test_a_finger_marked_inside_a_slap(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-111")
    await service.capture()
    await service.accept()  # the right four-finger slap, all four fingers on it
    warnings = await service.annotate(Position.RIGHT_RING, Annotation.AMPUTATED)
    assert warnings and "right four" in warnings[0]  # the accepted slap shows the finger
    assert wording(warnings[0]) == {"code": "retake_slap",
                                    "params": {"position": int(Position.PLAIN_RIGHT_FOUR)}}
    assert await service.annotate(Position.LEFT_INDEX, Annotation.UNABLE_TO_PRINT) == []
    for finger in (Position.LEFT_MIDDLE, Position.LEFT_RING, Position.LEFT_LITTLE):
        await service.annotate(finger, Annotation.UNABLE_TO_PRINT)
    # every finger of the left slap is marked: nothing left to take there
    assert service.current_step.position is Position.PLAIN_THUMBS
    await service.annotate(Position.LEFT_LITTLE, None)  # undone
    assert service.current_step.position is Position.PLAIN_LEFT_FOUR
    entries = service.store.audit_entries(50)
    assert sum(e["action"] == "annotation" for e in entries) == 6
