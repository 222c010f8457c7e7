"""Live checks on every preview frame, and the auto-capture that waits for steady good frames.

The kiosk shows the officer a live preview at 15 frames per second or more; each frame is judged
here before the next one arrives, on a Raspberry Pi 4 class CPU. So this module uses numpy block
statistics only (no FFT, no labelling): block means and contrasts at about 0.6 mm per block tell
skin from glass, how dark the print is, where it lies, how many fingertips a slap shows (by
columns of skin across the top of the hand) and, against the previous frame, whether the finger
is still moving. Measurements are in millimetres, so 125 ppi previews of a ten-print platen and
500 ppi frames of a small sensor are judged alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from appliance.imaging.feedback import Advice, centring_advice, darkness_advice, sentence
from appliance.imaging.measures import MM_PER_INCH


@dataclass(frozen=True, slots=True)
class LiveThresholds:
    """Limits of the live checks; defaults suit optical livescan previews."""

    block_mm: float = 0.6  # block edge; fine enough to keep a 1.2 mm gap between fingers
    skin_std: float = 14.0  # gray std above which a block shows ridges
    present_mm2: float = 40.0  # less skin than this: nothing on the glass
    contact_mm2: float = 150.0  # a flat fingertip touches at least this much glass
    contact_per_finger_mm2: float = 120.0  # in a slap, per expected finger
    light_gray: float = 200.0  # print mean above this: press harder
    dark_gray: float = 70.0  # print mean below this: press lighter
    min_contrast: float = 20.0  # mean block std over the print below this: low contrast
    smudge_mm2: float = 60.0  # dark, ridgeless residue on the glass beyond this: clean it
    motion: float = 6.0  # mean absolute frame difference (gray levels) over the print
    centre_tolerance: float = 0.18  # allowed offset of the print centre, fraction of the frame
    finger_band_mm: float = 25.0  # depth of the band below the highest tip used to count tips
    finger_min_mm: float = 6.0  # narrower columns of skin are not a fingertip
    finger_merge_mm: float = 30.0  # a column of skin wider than this holds two fingers
    # a roll's progress bar is full at this width of skin covered: a little finger rolls about
    # 15-18 mm nail to nail, a thumb about 25 (a guide for the officer, not a gate)
    roll_width_mm: float = 18.0


#: A box on the frame, (left, top, right, bottom) as fractions of its width and height.
Box = tuple[float, float, float, float]


@dataclass(slots=True)
class LiveVerdict:
    """One frame's verdict: ``ok`` when nothing needs fixing; reasons are officer sentences."""

    ok: bool
    reasons: list[str]
    measures: dict[str, float]
    codes: list[str] = field(default_factory=list)  # Advice names, same order as reasons
    #: where the skin is: one box per fingertip seen in a slap, else one around the print
    boxes: list[Box] = field(default_factory=list)


class LiveChecker:
    """Judges preview frames one after another (it keeps the previous frame for motion)."""

    def __init__(
        self,
        expected_fingers: int | None = None,
        *,
        rolled: bool = False,
        thresholds: LiveThresholds | None = None,
    ) -> None:
        """``expected_fingers``: 4 for a four-finger slap, 2 for thumbs, 1 or None for one."""
        if expected_fingers is not None and not 1 <= expected_fingers <= 4:
            raise ValueError(f"expected_fingers must be 1..4 or None, got {expected_fingers}")
        self.expected_fingers = expected_fingers
        self.rolled = rolled
        self.limits = thresholds or LiveThresholds()
        self._previous: np.ndarray | None = None
        self._rolled_columns: np.ndarray | None = None  # grid columns a roll has covered

    @property
    def slap(self) -> bool:
        """True when the step places several fingers at once."""
        return (self.expected_fingers or 1) > 1

    def reset(self) -> None:
        """Forget the previous frame (a new step or a new placement)."""
        self._previous = None
        self._rolled_columns = None

    def check(self, frame_image: np.ndarray, ppi: float) -> LiveVerdict:
        """The verdict for one uint8 frame (dark ridges on light glass) scanned at ``ppi``."""
        lim = self.limits
        image = np.asarray(frame_image)
        if image.ndim != 2 or image.dtype != np.uint8 or ppi <= 0:
            raise ValueError("a preview frame is a 2-D uint8 array with a positive ppi")
        px_per_mm = ppi / MM_PER_INCH
        block = max(2, round(lim.block_mm * px_per_mm))
        block_mm2 = (block / px_per_mm) ** 2
        h, w = image.shape
        gh, gw = h // block, w // block
        if gh < 4 or gw < 4:
            raise ValueError(f"a {w}x{h} frame at {ppi} ppi is too small to judge")
        pixels = image[: gh * block, : gw * block].astype(np.float32)
        area = float(block * block)
        mean = _block_sums(pixels, block) / area
        std = np.sqrt(np.maximum(_block_sums(pixels * pixels, block) / area - mean * mean, 0.0))

        ridged = std >= lim.skin_std
        skin = ridged & (_neighbours(ridged) >= 3)  # drop lone specks of dust or noise
        flat = mean.ravel()
        glass = float(np.partition(flat, int(0.95 * (flat.size - 1)))[int(0.95 * (flat.size - 1))])
        measures: dict[str, float] = {
            "frame_ppi": float(ppi),
            "glass_gray": glass,
            "contact_mm2": float(skin.sum()) * block_mm2,
            "contact_fraction": float(skin.mean()),
        }
        motion = self._motion(mean, skin)
        measures["motion"] = motion

        advice: list[Advice] = []
        expected = self.expected_fingers or 1
        if measures["contact_mm2"] < lim.present_mm2:
            advice.append(self._placement_advice())
            smudge = self._smudge_mm2(mean, skin, glass, block_mm2)
            measures["smudge_mm2"] = smudge
            if smudge > lim.smudge_mm2:
                advice.append(Advice.CLEAN_GLASS)
            measures["present"] = 0.0
            self._rolled_columns = None  # the finger left: a new roll starts from nothing
            return self._verdict(advice, measures)
        measures["present"] = 1.0
        if self.rolled:
            measures["rolled_mm"] = self._roll_covered(skin) * block / px_per_mm

        if motion > lim.motion and not self.rolled:  # a roll moves by design
            advice.append(Advice.HOLD_STILL)

        boxes = [_bounding_box(skin)]
        if self.expected_fingers is not None and self.slap:
            seen, merged = self._count_fingertips(skin, block / px_per_mm)
            measures["fingers"] = float(seen)
            boxes = self._tip_boxes(skin, block / px_per_mm, seen) or boxes
            if merged:
                advice.append(Advice.SPREAD_FINGERS)
            elif seen < expected:
                # A hand crowding one side of the platen has lost a finger over the edge.
                advice.extend(self._crowded_side(skin, measures))
                advice.append(self._placement_advice())
            elif seen > expected:
                advice.append(Advice.TOO_MANY_FINGERS)
        need = lim.contact_per_finger_mm2 * expected if self.slap else lim.contact_mm2
        if measures["contact_mm2"] < need:
            advice.append(Advice.ROLL_WIDER if self.rolled else Advice.MORE_CONTACT)

        count = float(skin.sum())
        off_x = (float(skin.sum(axis=0) @ np.arange(gw)) / count + 0.5) / gw - 0.5
        off_y = (float(skin.sum(axis=1) @ np.arange(gh)) / count + 0.5) / gh - 0.5
        measures["centre_offset_x"] = float(off_x)
        measures["centre_offset_y"] = float(off_y)
        # A slap is judged across the platen only: the hand's depth on the glass varies.
        advice.extend(
            centring_advice(off_x, 0.0 if self.slap else off_y, lim.centre_tolerance)
        )
        advice.extend(self._edge_advice(skin, advice))

        print_gray = float(mean[skin].mean())
        contrast = float(std[skin].mean())
        measures["print_mean_gray"] = print_gray
        measures["contrast"] = contrast
        pressure = darkness_advice(print_gray, lim.light_gray, lim.dark_gray)
        if pressure is not None:
            advice.append(pressure)
        elif contrast < lim.min_contrast:
            advice.append(Advice.CLEAN_GLASS)
        smudge = self._smudge_mm2(mean, skin, glass, block_mm2)
        measures["smudge_mm2"] = smudge
        if smudge > lim.smudge_mm2 and Advice.CLEAN_GLASS not in advice:
            advice.append(Advice.CLEAN_GLASS)
        sx, sy = gw * block / w, gh * block / h  # the grid leaves a part-block at each far edge
        boxes = [(float(x0 * sx), float(y0 * sy), float(x1 * sx), float(y1 * sy))
                 for x0, y0, x1, y1 in boxes]
        return self._verdict(advice, measures, boxes)

    # ---- parts ------------------------------------------------------------------------------

    def _verdict(self, advice: list[Advice], measures: dict[str, float],
                 boxes: list[Box] | None = None) -> LiveVerdict:
        unique = list(dict.fromkeys(advice))
        return LiveVerdict(
            ok=not unique,
            reasons=[sentence(a, hand=self.slap) for a in unique],
            measures=measures,
            codes=[a.code for a in unique],
            boxes=boxes or [],
        )

    def _placement_advice(self) -> Advice:
        if self.expected_fingers == 4:
            return Advice.PLACE_FOUR
        if self.expected_fingers == 2:
            return Advice.PLACE_THUMBS
        return Advice.PLACE_FINGER

    def _motion(self, mean: np.ndarray, skin: np.ndarray) -> float:
        """Mean change of block means since the previous frame, over the print (gray levels).

        Block means at 0.6 mm follow a finger sliding or lifting; a steady finger on a real
        sensor changes them by a level or two of noise.
        """
        previous, self._previous = self._previous, mean
        if previous is None or previous.shape != mean.shape:
            return 0.0
        region = skin | _grow(skin)
        if not region.any():
            return 0.0
        return float(np.abs(mean - previous)[region].mean())

    def _smudge_mm2(
        self, mean: np.ndarray, skin: np.ndarray, glass: float, block_mm2: float
    ) -> float:
        """Area of dark, ridgeless residue on the glass away from the print (mm^2)."""
        if glass < 180.0:  # no clean glass in view (small sensor fully covered)
            return 0.0
        residue = (mean < glass - 35.0) & ~_grow(_grow(skin))
        return float(residue.sum()) * block_mm2

    def _count_fingertips(self, skin: np.ndarray, block_mm: float) -> tuple[int, bool]:
        """Fingertips seen across the top of the hand, and whether two of them touch.

        Looks at a band below the highest fingertip (a lower little finger still reaches into
        it, the palm does not): each row crosses every fingertip once, so the number of skin
        runs at least a fingertip wide, held over a few millimetres of rows, is the count.
        A run wider than two fingertips' worth means fingers pressed together.
        """
        lim = self.limits
        rows = np.flatnonzero(skin.any(axis=1))
        band = skin[rows[0] : rows[0] + max(1, round(lim.finger_band_mm / block_mm))]
        steady_rows = max(1, round(3.0 / block_mm))
        tips = _runs_at_least(band, max(1, round(lim.finger_min_mm / block_mm)))
        counts = np.sort(tips.sum(axis=1))[::-1]
        seen = int(counts[min(steady_rows, counts.size) - 1])
        wide = _runs_at_least(band, max(2, round(lim.finger_merge_mm / block_mm)))
        merged = int((wide.sum(axis=1) > 0).sum()) >= steady_rows
        return seen, merged

    def _roll_covered(self, skin: np.ndarray) -> int:
        """Grid columns the rolling finger has touched since it came down."""
        columns = skin.any(axis=0)
        covered = self._rolled_columns
        if covered is None or covered.shape != columns.shape:
            covered = np.zeros_like(columns)
        covered |= columns
        self._rolled_columns = covered
        return int(covered.sum())

    def _tip_boxes(self, skin: np.ndarray, block_mm: float, seen: int) -> list[Box]:
        """One box per fingertip counted by :meth:`_count_fingertips`, left to right.

        Each is a run of skin across a row of the fingertip band that shows ``seen`` tips,
        from the top of the skin in its columns down one band's depth (a distal phalanx or
        two: the palm below is not a finger's).
        """
        if seen < 1:
            return []
        lim = self.limits
        depth = max(1, round(lim.finger_band_mm / block_mm))
        min_run = max(1, round(lim.finger_min_mm / block_mm))
        top = int(np.flatnonzero(skin.any(axis=1))[0])
        band = skin[top : top + depth]
        rows = np.flatnonzero(_runs_at_least(band, min_run).sum(axis=1) == seen)
        if rows.size == 0:
            return []
        row = band[int(rows[rows.size // 2])].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row, [0]))))
        gh, gw = skin.shape
        boxes: list[Box] = []
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end - start < min_run:
                continue
            skin_rows = np.flatnonzero(skin[:, start:end].any(axis=1))
            first = int(skin_rows[0])
            last = min(int(skin_rows[-1]), first + depth - 1)
            boxes.append((start / gw, first / gh, end / gw, (last + 1) / gh))
        return boxes

    @staticmethod
    def _crowded_side(skin: np.ndarray, measures: dict[str, float]) -> list[Advice]:
        """A move away from a platen side the print nearly touches while the other is free."""
        cols = np.flatnonzero(skin.any(axis=0))
        width = skin.shape[1]
        left, right = cols[0] / width, (width - 1 - cols[-1]) / width
        measures["margin_left"], measures["margin_right"] = float(left), float(right)
        if right < 0.05 and left > 0.15:
            return [Advice.MOVE_LEFT]
        if left < 0.05 and right > 0.15:
            return [Advice.MOVE_RIGHT]
        return []

    def _edge_advice(self, skin: np.ndarray, already: list[Advice]) -> list[Advice]:
        """Moves away from a platen edge the print runs off (only when not already advised)."""
        moves: list[Advice] = []
        left, right = skin[:, 0].mean(), skin[:, -1].mean()
        top = skin[0, :].mean()
        if left > 0.05 and Advice.MOVE_RIGHT not in already:
            moves.append(Advice.MOVE_RIGHT)
        if right > 0.05 and Advice.MOVE_LEFT not in already:
            moves.append(Advice.MOVE_LEFT)
        if top > 0.05 and Advice.MOVE_DOWN not in already:
            moves.append(Advice.MOVE_DOWN)
        return moves


def _block_sums(pixels: np.ndarray, block: int) -> np.ndarray:
    """Sum of each ``block`` x ``block`` tile of a float32 image cropped to whole tiles.

    Adding the ``block`` row and column phases one by one is many times faster than a
    reshape-and-reduce over small axes, which keeps a preview frame within budget.
    """
    h, w = pixels.shape
    gh, gw = h // block, w // block
    rows = pixels.reshape(gh, block, w)
    acc = rows[:, 0].copy()
    for k in range(1, block):
        acc += rows[:, k]
    cols = acc.reshape(gh, gw, block)
    out = cols[:, :, 0].copy()
    for k in range(1, block):
        out += cols[:, :, k]
    return out


def _bounding_box(skin: np.ndarray) -> Box:
    """The box around every skin block, as fractions of the frame."""
    gh, gw = skin.shape
    rows, cols = np.flatnonzero(skin.any(axis=1)), np.flatnonzero(skin.any(axis=0))
    return (cols[0] / gw, rows[0] / gh, (cols[-1] + 1) / gw, (rows[-1] + 1) / gh)


def _runs_at_least(mask: np.ndarray, width: int) -> np.ndarray:
    """Per row, a flag at the start of each horizontal run of ``mask`` at least ``width`` long.

    Returns an int8 array with one 1 per such run (at its first cell), so ``.sum(axis=1)`` is
    the count of long runs in each row.
    """
    h, w = mask.shape
    if width > w:
        return np.zeros((h, w), dtype=np.int8)
    cs = np.zeros((h, w + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=cs[:, 1:])
    full = (cs[:, width:] - cs[:, :-width]) == width  # window [j, j + width) all set
    starts = full.copy()
    starts[:, 1:] &= ~full[:, :-1]  # first window of each long run
    return starts.astype(np.int8)


def _box3(mask: np.ndarray) -> np.ndarray:
    """Count of set cells in each cell's 3x3 neighbourhood, itself included (separable sum)."""
    m = mask.astype(np.uint8)
    rows = m.copy()
    rows[:, 1:] += m[:, :-1]
    rows[:, :-1] += m[:, 1:]
    out = rows.copy()
    out[1:] += rows[:-1]
    out[:-1] += rows[1:]
    return out


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Count of set cells in each cell's 3x3 neighbourhood, itself excluded."""
    return _box3(mask) - mask.astype(np.uint8)


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` dilated by one cell (3x3)."""
    return _box3(mask) > 0


@dataclass(frozen=True, slots=True)
class AutoCaptureDecision:
    """What the kiosk does after a frame: capture now, or show ``message`` and wait."""

    capture: bool
    message: str
    steady_frames: int
    codes: list[str] = field(default_factory=list)


class AutoCapture:
    """Says "capture now" once the live checks hold for ``required_frames`` frames in a row."""

    def __init__(self, required_frames: int = 3) -> None:
        if required_frames < 1:
            raise ValueError("required_frames must be at least 1")
        self.required_frames = required_frames
        self._steady = 0

    def reset(self) -> None:
        """Start counting again (after a capture, a retake or a new step)."""
        self._steady = 0

    def feed(self, verdict: LiveVerdict) -> AutoCaptureDecision:
        """Count one frame's verdict; the first reason is the message while not steady."""
        if not verdict.ok:
            self._steady = 0
            return AutoCaptureDecision(False, verdict.reasons[0], 0, list(verdict.codes))
        self._steady += 1
        if self._steady >= self.required_frames:
            steady, self._steady = self._steady, 0
            return AutoCaptureDecision(True, Advice.CAPTURE_NOW.value, steady, [])
        return AutoCaptureDecision(
            False, Advice.HOLD_STILL.value, self._steady, [Advice.HOLD_STILL.code]
        )
