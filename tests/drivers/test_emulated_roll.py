"""The livescan emulator rolls a finger: strip frames in the preview, stitched at capture."""

from __future__ import annotations

import numpy as np

from drivers import synthetic
from drivers.base import CaptureMode
from drivers.emulated import EmulatedConfig, EmulatedLivescan, stitch_roll


def contact_width(image: np.ndarray) -> int:
    columns = (image < 128).sum(axis=0) > 20
    return int(columns.sum())


def test_stitched_roll_covers_more_than_any_frame_without_ghosting() -> None:
    master = synthetic.generate_master(3)
    frames = list(synthetic.rolled_sequence(master, np.random.default_rng(1), frames=12))
    stitched = stitch_roll(frames)
    assert stitched.shape == frames[0].shape
    assert contact_width(stitched) > 1.3 * max(contact_width(f) for f in frames)
    # every column comes whole from one frame: a seam, never a blend of two frames (no ghosts)
    stack = np.stack(frames)
    for x in range(0, stitched.shape[1], 37):
        assert any(np.array_equal(stitched[:, x], stack[i, :, x]) for i in range(len(frames)))


def test_preview_shows_the_roll_and_capture_is_stitched() -> None:
    driver = EmulatedLivescan(EmulatedConfig(seed=4))
    driver.open()
    driver.guide(7)
    frames = [driver.preview(CaptureMode.ROLLED) for _ in range(10)]
    rolling = [f for f in frames if f.meta.get("rolling")]
    assert len(rolling) >= 5
    widths = [contact_width(f.image) for f in rolling]
    assert max(widths) < rolling[0].image.shape[1]  # strips, not the whole finger at once
    centres = [float(np.nonzero((f.image < 128).sum(axis=0) > 5)[0].mean()) for f in rolling]
    assert centres[-1] != centres[0]  # the contact strip moves across the platen
    capture = driver.capture(CaptureMode.ROLLED)
    assert capture.image.shape == (750, 800)
    assert contact_width(capture.image) > max(widths) * 4  # preview is at 1/4 scale
    driver.close()
