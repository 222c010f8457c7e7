"""The live preview and auto-capture, driven by the emulated scanner, no browser."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from appliance.capture.preview import PreviewFault, PreviewFrame, PreviewIdle, PreviewLoop
from appliance.errors import ScannerUnavailable
from drivers.base import CaptureMode


async def first_of(stream, kind, limit: int = 400):
    async for message in stream:
        if isinstance(message, kind):
            return message
        limit -= 1
        assert limit > 0, f"no {kind.__name__} in the preview"
    raise AssertionError("the preview ended")


async def test_frames_carry_a_jpeg_and_the_live_verdict(booking_factory) -> None:
    service = await booking_factory()
    loop = PreviewLoop(service, fps=15, auto_capture=False, auto_frames=3)
    stream = loop.messages()
    try:
        assert isinstance(await anext(stream), PreviewIdle)  # no booking yet
        await service.start("BK-200")
        frame = await first_of(stream, PreviewFrame)
        assert frame.jpeg[:2] == b"\xff\xd8"
        assert max(Image.open(io.BytesIO(frame.jpeg)).size) <= 400
        assert isinstance(frame.ok, bool) and isinstance(frame.message, str)
        assert service.pending is None  # auto-capture is off
        assert (frame.steady, frame.needed) == (0, 0)  # and the page shows no countdown
    finally:
        await stream.aclose()


async def test_auto_capture_takes_the_print_once_the_checks_hold(booking_factory) -> None:
    service = await booking_factory()
    await service.start("BK-201")
    loop = PreviewLoop(service, fps=15, auto_capture=True, auto_frames=2)
    stream = loop.messages()
    counts = []
    try:
        async with asyncio.timeout(120):
            async for message in stream:
                if service.pending is not None:
                    break
                assert not isinstance(message, PreviewFault)
                if isinstance(message, PreviewFrame):
                    assert message.needed == 2  # the page's countdown
                    counts.append(message.steady)
        assert service.pending.position == service.current_step.position
        assert counts and counts[-1] == 2 and all(0 <= c <= 2 for c in counts), counts
        assert isinstance(await anext(stream), PreviewIdle)  # the print waits for review
    finally:
        await stream.aclose()


async def test_a_scanner_fault_ends_the_preview_with_its_reason(booking_factory) -> None:
    service = await booking_factory(faults={"unplug_after_captures": 1})
    await service.start("BK-202")
    await service.capture()
    await service.accept()
    with pytest.raises(ScannerUnavailable):
        await service.capture()  # the cable is pulled
    loop = PreviewLoop(service, fps=15, auto_capture=False, auto_frames=3)
    stream = loop.messages()
    try:
        async with asyncio.timeout(120):
            fault = await first_of(stream, PreviewFault)
        assert "device not present" in fault.message
    finally:
        await stream.aclose()


async def test_a_rolled_step_shows_how_far_the_roll_has_come(booking_factory) -> None:
    """Flat steps carry no roll; a rolled step's frames count the skin covered, only growing."""
    service = await booking_factory(sequence="tenprint")
    await service.start("BK-203")
    loop = PreviewLoop(service, fps=15, auto_capture=False, auto_frames=3)
    stream = loop.messages()
    try:
        flat = await first_of(stream, PreviewFrame)
        assert (flat.rolled_mm, flat.roll_target_mm) == (0.0, 0.0)
    finally:
        await stream.aclose()
    while service.current_step.mode is not CaptureMode.ROLLED:
        await service.capture()
        await service.accept(override_reason="test print")
    stream = PreviewLoop(service, fps=15, auto_capture=False, auto_frames=3).messages()
    covered: list[float] = []
    target = 0.0
    try:
        async with asyncio.timeout(120):
            async for message in stream:
                assert not isinstance(message, PreviewFault)
                if isinstance(message, PreviewFrame):
                    target = message.roll_target_mm
                    if message.rolled_mm:
                        covered.append(message.rolled_mm)
                    if len(covered) >= 16:  # more than one pass of the emulated roll
                        break
    finally:
        await stream.aclose()
    assert target > 0
    assert covered == sorted(covered), covered  # a roll only adds skin
    assert covered[0] < target <= covered[-1], (covered, target)
