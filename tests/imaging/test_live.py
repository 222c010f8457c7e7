"""Live checks on preview frames and the auto-capture that follows them."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.imaging.feedback import Advice
from appliance.imaging.live import AutoCapture, LiveChecker, LiveVerdict
from tests.imaging.conftest import load_gray

PREVIEW = 4  # the emulator's previews: every 4th pixel of the 500 ppi platen (125 ppi)


@pytest.fixture(scope="module")
def slaps(synthetic, hand):
    rng = np.random.default_rng(21)
    four = synthetic.slap(hand[1:5], rng).image
    three = synthetic.slap(hand[1:4], rng).image  # little finger missing
    return {"four": four, "three": three}


def preview(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[::PREVIEW, ::PREVIEW])


def test_a_four_finger_slap_is_ready_to_capture(slaps):
    verdict = LiveChecker(4).check(preview(slaps["four"]), 125)
    assert verdict.ok, verdict.reasons
    assert verdict.reasons == []
    assert verdict.measures["fingers"] == 4
    assert verdict.measures["present"] == 1.0
    assert verdict.measures["contact_mm2"] > 400


def test_a_missing_finger_is_seen(slaps):
    verdict = LiveChecker(4).check(preview(slaps["three"]), 125)
    assert not verdict.ok
    assert verdict.measures["fingers"] == 3
    assert verdict.codes[0] == Advice.PLACE_FOUR.code
    assert verdict.reasons[0] == Advice.PLACE_FOUR.value


def test_two_thumbs_on_a_real_livescan(shared_data):
    image = load_gray(shared_data / "nist_wsq_reference/input/sample_01.webp")
    verdict = LiveChecker(2).check(preview(image), 125)
    assert verdict.measures["fingers"] == 2
    assert Advice.PLACE_THUMBS.code not in verdict.codes


def test_four_fingers_where_two_thumbs_belong(slaps):
    verdict = LiveChecker(2).check(preview(slaps["four"]), 125)
    assert Advice.TOO_MANY_FINGERS.code in verdict.codes


def test_empty_glass_asks_for_the_finger():
    blank = np.full((375, 400), 242, np.uint8)
    verdict = LiveChecker(None).check(blank, 125)
    assert not verdict.ok
    assert verdict.codes == [Advice.PLACE_FINGER.code]
    assert verdict.measures["present"] == 0.0


def test_residue_on_empty_glass_asks_to_clean_it():
    frame = np.full((375, 400), 242, np.uint8)
    yy, xx = np.mgrid[:375, :400]
    for cy, cx in ((100, 120), (260, 300), (200, 60)):
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < 30**2] = 150  # latent residue: dark, no ridges
    verdict = LiveChecker(4).check(frame, 125)
    assert verdict.codes == [Advice.PLACE_FOUR.code, Advice.CLEAN_GLASS.code]
    assert verdict.reasons[1] == Advice.CLEAN_GLASS.value


def test_a_moving_hand_must_hold_still(slaps):
    frame = preview(slaps["four"])
    checker = LiveChecker(4)
    assert checker.check(frame, 125).ok
    assert checker.check(frame, 125).measures["motion"] == 0.0
    moved = np.roll(frame, 6, axis=1)  # 1.2 mm between two frames
    verdict = checker.check(moved, 125)
    assert Advice.HOLD_STILL.code in verdict.codes
    assert verdict.measures["motion"] > 6.0


def test_light_and_heavy_pressure(slaps):
    frame = preview(slaps["four"]).astype(np.float32)
    light = (255 - (255 - frame) * 0.3).astype(np.uint8)
    heavy = (frame * 0.3).astype(np.uint8)
    assert Advice.PRESS_HARDER.code in LiveChecker(4).check(light, 125).codes
    assert Advice.PRESS_LIGHTER.code in LiveChecker(4).check(heavy, 125).codes


def test_an_off_centre_finger_on_a_small_sensor(hand):
    finger = hand[2].impression(np.random.default_rng(4)).image  # 500 ppi flat print
    h, w = finger.shape
    sensor = np.full((h + 200, w + 400), 242, np.uint8)
    sensor[100 : 100 + h, :w] = finger  # pushed against the left edge
    verdict = LiveChecker(1).check(sensor, 500)
    assert Advice.MOVE_RIGHT.code in verdict.codes
    assert verdict.reasons[verdict.codes.index(Advice.MOVE_RIGHT.code)] == (
        Advice.MOVE_RIGHT.value
    )
    centred = np.full_like(sensor, 242)
    centred[100 : 100 + h, 200 : 200 + w] = finger
    assert LiveChecker(1).check(centred, 500).ok


def test_slap_moves_speak_of_the_hand(slaps):
    frame = preview(slaps["four"])
    shifted = np.full_like(frame, 242)
    shifted[:, 40:] = frame[:, :-40]  # the little finger runs off the right edge
    verdict = LiveChecker(4).check(shifted, 125)
    assert verdict.reasons == ["Move the hand to the left."]


def test_a_finger_lost_over_the_edge_comes_back_by_moving(slaps):
    frame = preview(slaps["four"])
    shifted = np.full_like(frame, 242)
    shifted[:, 90:] = frame[:, :-90]  # the little finger is off the platen altogether
    verdict = LiveChecker(4).check(shifted, 125)
    assert verdict.measures["fingers"] == 3
    assert verdict.codes[:2] == [Advice.MOVE_LEFT.code, Advice.PLACE_FOUR.code]


def test_bad_frames_are_refused():
    with pytest.raises(ValueError):
        LiveChecker(4).check(np.zeros((375, 400), np.float32), 125)
    with pytest.raises(ValueError):
        LiveChecker(4).check(np.zeros((10, 10), np.uint8), 125)
    with pytest.raises(ValueError):
        LiveChecker(5)


def _verdict(ok: bool, reason: str = "Press a little harder.") -> LiveVerdict:
    return LiveVerdict(ok=ok, reasons=[] if ok else [reason], measures={})


def test_auto_capture_waits_for_steady_frames():
    auto = AutoCapture(required_frames=3)
    first, second = auto.feed(_verdict(True)), auto.feed(_verdict(True))
    assert not first.capture and not second.capture
    assert second.message == Advice.HOLD_STILL.value
    third = auto.feed(_verdict(True))
    assert third.capture and third.message == Advice.CAPTURE_NOW.value
    assert third.steady_frames == 3
    assert not auto.feed(_verdict(True)).capture  # counting starts again after a capture


def test_auto_capture_shows_the_reason_and_restarts():
    auto = AutoCapture(required_frames=2)
    auto.feed(_verdict(True))
    blocked = auto.feed(_verdict(False, "Hold still."))
    assert not blocked.capture and blocked.message == "Hold still."
    assert not auto.feed(_verdict(True)).capture
    assert auto.feed(_verdict(True)).capture


@pytest.mark.slow  # the emulator builds its own synthetic subject (about 10 s)
def test_emulator_previews_lead_to_one_capture(synthetic):
    emulated = pytest.importorskip("drivers.emulated")
    from drivers.base import CaptureMode

    scanner = emulated.EmulatedLivescan(emulated.EmulatedConfig(seed=3))
    scanner.open()
    try:
        scanner.guide(13)
        checker, auto = LiveChecker(4), AutoCapture(3)
        decisions = []
        for _ in range(12):
            frame = scanner.preview(CaptureMode.FLAT_FOUR)
            decision = auto.feed(checker.check(frame.image, frame.ppi))
            decisions.append((frame.finger_present, decision))
            if decision.capture:
                break
    finally:
        scanner.close()
    captured = [i for i, (_, d) in enumerate(decisions) if d.capture]
    assert captured, [d.message for _, d in decisions]
    # never while the hand is still coming down
    assert all(present for present, d in decisions if d.capture)


def test_each_fingertip_of_a_slap_gets_a_box_over_its_finger(slaps, synthetic, hand):
    """The boxes drawn over the preview sit on the fingers the generator placed."""
    rng = np.random.default_rng(5)
    for fingers in (hand[1:5], hand[1:4]):
        drawn = synthetic.slap(fingers, rng)
        h, w = drawn.image.shape
        verdict = LiveChecker(4).check(preview(drawn.image), 125)
        assert len(verdict.boxes) == len(fingers) == verdict.measures["fingers"]
        truth = sorted(drawn.boxes, key=lambda b: b.cx)
        for (x0, y0, x1, y1), finger in zip(verdict.boxes, truth, strict=True):
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert x0 * w <= finger.cx <= x1 * w, (x0 * w, finger.cx, x1 * w)
            tip_y = finger.corners()[:2, 1].min()  # the fingertip's edge of the truth box
            assert y0 * h - 40 <= tip_y <= y1 * h, (y0 * h, tip_y, y1 * h)


def test_a_single_print_gets_one_box_around_it(hand):
    image = hand[1].impression(np.random.default_rng(3)).image  # 500 ppi flat print
    verdict = LiveChecker(1).check(image, 500)
    assert len(verdict.boxes) == 1
    x0, y0, x1, y1 = verdict.boxes[0]
    dark = np.argwhere(image < 128)
    (top, left), (bottom, right) = dark.min(axis=0), dark.max(axis=0)
    h, w = image.shape
    assert x0 * w <= left + 10 and right - 10 <= x1 * w, (x0 * w, left, right, x1 * w)
    assert y0 * h <= top + 10 and bottom - 10 <= y1 * h, (y0 * h, top, bottom, y1 * h)


def test_empty_glass_has_no_box():
    blank = np.full((375, 400), 242, np.uint8)
    assert LiveChecker(4).check(blank, 125).boxes == []


def test_a_roll_counts_the_skin_it_has_covered_until_the_finger_leaves(hand, synthetic):
    frames = list(synthetic.rolled_sequence(hand[1], np.random.default_rng(2), frames=12))
    checker = LiveChecker(1, rolled=True)
    covered = [checker.check(preview(f), 125).measures["rolled_mm"] for f in frames]
    assert covered == sorted(covered) and covered[-1] > 1.5 * covered[0], covered
    assert covered[-1] >= checker.limits.roll_width_mm  # an index rolls nail to nail
    blank = np.full_like(preview(frames[0]), 242)
    assert "rolled_mm" not in checker.check(blank, 125).measures  # lifted: nothing to count
    again = checker.check(preview(frames[0]), 125).measures["rolled_mm"]
    assert again == covered[0]  # a new roll starts from its first contact
    assert "rolled_mm" not in LiveChecker(1).check(preview(frames[0]), 125).measures
