"""A ten-print livescan emulator: a 3.2 x 3.0 inch platen at 500 ppi with a virtual subject.

Product code, not a test double: the demo runs on it, the tests drive the whole station through
it, and its fault knobs (no finger, dirty platen, wet or dry skin, swapped fingers, unplug) come
from config like any other driver option. Its fingers come from the synthetic generator
(:mod:`drivers.synthetic`) or from a folder of real images. A subject keeps the same ten fingers
for a whole booking, so rolled and flat impressions of one finger are the same finger with the
distortion a real finger shows; ``guide(0)`` (guides off, between bookings) brings the next
subject.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.base import Capabilities, CaptureMode, Frame, Identity, Indicator, ScannerDriver
from drivers.errors import NoFinger, ScannerDisconnected, ScannerTimeout, UnsupportedMode

PLATEN_PX = (1600, 1500)  # width, height at 500 ppi: 3.2 x 3.0 inch
SINGLE_PX = (800, 750)  # capture window for one rolled or flat finger
PREVIEW_SCALE = 4  # preview frames at 125 ppi keep 15+ fps cheap
APPROACH_FRAMES = 4  # preview frames while the finger comes down onto the platen
ROLL_FRAMES = 12  # frames of a roll, nail edge to nail edge

SLAP_MEMBERS = {
    CaptureMode.FLAT_FOUR: {13: (2, 3, 4, 5), 14: (10, 9, 8, 7)},
    CaptureMode.TWO_THUMBS: {15: (6, 1)},
}


class EmulatedFaults(BaseModel):
    """Fault knobs of the livescan emulator."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    no_finger: bool = Field(False, description="The subject never puts a finger down.")
    dirty_platen: float = Field(
        0.0, ge=0, le=1, description="Residue left on the glass (0 clean .. 1 smeared)."
    )
    moisture: float = Field(0.0, ge=-1, le=1, description="-1 very dry .. 0 normal .. 1 very wet.")
    swap_positions: list[tuple[int, int]] = Field(
        default_factory=list,
        description="Pairs of positions whose fingers the subject swaps when rolling.",
    )
    unplug_after_captures: int | None = Field(
        None, ge=0, description="The cable is pulled after this many captures (until reset)."
    )
    wedged_captures: int = Field(
        0, ge=0, description="The device hangs: this many captures time out until a reset."
    )


class EmulatedConfig(BaseModel):
    """Config of the ``emulated`` scanner type."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["emulated"] = Field("emulated", description="Selects this driver.")
    seed: int = Field(1, description="Seed of the first virtual subject; each booking adds one.")
    image_source: Literal["synthetic", "pattern"] | Path = Field(
        "synthetic",
        description="'synthetic' (realistic, slower), 'pattern' (a plain ridge pattern, fast), "
        "or a folder of real 500 ppi finger images.",
    )
    preview_fps: float = Field(20.0, gt=0, le=60, description="Declared preview frame rate.")
    capture_latency_s: float = Field(
        0.0, ge=0, le=5, description="Extra time a capture takes, like a real device's exposure."
    )
    process: bool = Field(
        False,
        description="Draw the virtual subject in a child process, as a real scanner images in "
        "its own hardware: the station's process then holds only what it would hold with one.",
    )
    faults: EmulatedFaults = Field(default_factory=EmulatedFaults, description="Fault knobs.")


@dataclass(slots=True)
class _Presentation:
    """What the subject has put (or is putting) on the platen."""

    mode: CaptureMode
    position: int
    frames_shown: int = 0
    preview: np.ndarray | None = None
    rolled_frames: list[np.ndarray] = field(default_factory=list)


class EmulatedLivescan(ScannerDriver):
    """The ``emulated`` driver: a virtual ten-print livescan with a virtual subject."""

    type_name = "emulated"
    Config = EmulatedConfig

    def __init__(self, config: EmulatedConfig | None = None) -> None:
        self.config = config or EmulatedConfig()
        self._subject_index = 0
        self._fingers: dict[int, object] = {}
        self._folder_images: list[np.ndarray] | None = None
        self._rng = np.random.default_rng(self.config.seed)
        self._guided = 0
        self._presentation: _Presentation | None = None
        self._captures = 0
        self._open = False
        self._unplugged = False
        self._wedged = self.config.faults.wedged_captures
        self._prefetching: threading.Thread | None = None
        self._unplug_fired = False

    # ---- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Device name for errors and logs."""
        return "emulated-livescan"

    def identity(self) -> Identity:
        """The emulator says what it is."""
        return Identity(vendor="booking-station", model="Emulated livescan", serial="EMU-0001",
                        firmware="1.0")

    def capabilities(self) -> Capabilities:
        """A FAP 60 class ten-print platen."""
        return Capabilities(
            platen_mm=(81.3, 76.2),
            ppi=500,
            image_size=PLATEN_PX,
            modes=frozenset(CaptureMode),
            preview_fps=self.config.preview_fps,
            indicators=frozenset(Indicator),
            mode_sizes={CaptureMode.ROLLED: SINGLE_PX, CaptureMode.FLAT_SINGLE: SINGLE_PX},
            preview_ppi=500 // PREVIEW_SCALE,
        )

    # ---- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Power the virtual device up; the first subject starts growing fingers."""
        if self._unplugged:
            raise ScannerDisconnected("device not present", device=self.name, operation="open")
        if not self._open and not self._fingers and self._prefetching is None:
            self._prefetch(self._subject_index)
        self._open = True

    def close(self) -> None:
        """Power down; safe twice."""
        self._open = False

    def reset(self) -> None:
        """A reset unwedges the device and plugs the cable back in (the technician's fix)."""
        self._unplugged = False
        self._wedged = 0
        self._captures = 0
        self.close()
        self.open()

    def replug(self) -> None:
        """Fault knob for tests: the cable comes back."""
        self._unplugged = False

    def _check(self, operation: str) -> None:
        if self._unplugged or not self._open:
            raise ScannerDisconnected("device not present", device=self.name, operation=operation)

    # ---- subject --------------------------------------------------------------------------

    def guide(self, position: int) -> None:
        """Light the guide for ``position``; 0 ends the subject's turn (next booking)."""
        if position == 0:
            if self._guided:
                self._subject_index += 1
                self._fingers.clear()
                self._prefetch(self._subject_index)
            self._guided = 0
            self._presentation = None
            return
        self._guided = position
        self._presentation = None

    def _finger_for(self, position: int) -> int:
        for a, b in self.config.faults.swap_positions:
            if position == a:
                return b
            if position == b:
                return a
        return position

    def _hand_seed(self, subject_index: int) -> int:
        return self.config.seed * 1_000_003 + subject_index

    def _prefetch(self, subject_index: int) -> None:
        """Grow the next subject's fingers in the background (a hand takes seconds)."""
        if self.config.image_source != "synthetic":
            return
        from drivers import synthetic

        seed = self._hand_seed(subject_index)
        thread = threading.Thread(target=synthetic.generate_hand, args=(seed,),
                                  name="synthetic-hand", daemon=True)
        thread.start()
        self._prefetching = thread

    def _master(self, position: int) -> object:
        if position not in self._fingers:
            from drivers import synthetic

            if self._prefetching is not None:
                self._prefetching.join()  # the generator's cache then holds this hand
                self._prefetching = None
            hand = synthetic.generate_hand(self._hand_seed(self._subject_index))
            for index, master in enumerate(hand, start=1):
                self._fingers[index] = master
        return self._fingers[position]

    def _roll_frames(self, position: int) -> list[np.ndarray]:
        """The frames a livescan sees while the finger rolls nail edge to nail edge."""
        from drivers import synthetic

        master = self._master(self._finger_for(position))
        return list(synthetic.rolled_sequence(master, self._rng, frames=ROLL_FRAMES,
                                              size=SINGLE_PX,
                                              moisture=self.config.faults.moisture))

    def _single(self, position: int, rolled: bool) -> np.ndarray:
        finger = self._finger_for(position) if rolled else position
        if self.config.image_source == "pattern":
            return self._pattern(finger, rolled)
        if self.config.image_source != "synthetic":
            return self._from_folder(finger, rolled)
        if rolled:
            return stitch_roll(self._roll_frames(position))
        master = self._master(finger)
        impression = master.impression(  # type: ignore[attr-defined]
            self._rng, rolled=rolled, moisture=self.config.faults.moisture
        )
        return _place(impression.image, SINGLE_PX, self._rng, jitter=20)

    def _pattern(self, finger: int, rolled: bool) -> np.ndarray:
        from drivers.faults import ridge_pattern

        source = ridge_pattern(self._subject_index * 10 + finger)
        size = (560, 600) if rolled else (380, 520)
        return _place(source(size, 500, self._rng), SINGLE_PX, self._rng, jitter=20)

    def _from_folder(self, finger: int, rolled: bool) -> np.ndarray:
        if self._folder_images is None:
            self._folder_images = _load_folder(Path(self.config.image_source))
        images = self._folder_images
        base = images[(self._subject_index * 10 + finger - 1) % len(images)]
        return _place(base, SINGLE_PX, self._rng, jitter=10)

    def _slap(self, mode: CaptureMode, position: int) -> np.ndarray:
        members = SLAP_MEMBERS[mode].get(position)
        if members is None:
            members = next(iter(SLAP_MEMBERS[mode].values()))
        if self.config.image_source != "synthetic":
            canvas = np.full(PLATEN_PX[::-1], 240, np.uint8)
            step = PLATEN_PX[0] // len(members)
            single = self._pattern if self.config.image_source == "pattern" else self._from_folder
            for i, finger in enumerate(members):
                img = single(finger, False)[:700, :380]
                y = 150 + (i % 2) * 80
                canvas[y : y + img.shape[0], i * step + 10 : i * step + 10 + img.shape[1]] = img
            return canvas
        from drivers import synthetic

        masters = [self._master(f) for f in members]  # slaps are always the right fingers
        slap = synthetic.slap(
            masters, self._rng, platen=PLATEN_PX, thumbs=mode is CaptureMode.TWO_THUMBS
        )
        return slap.image

    def _final_image(self, mode: CaptureMode, position: int) -> np.ndarray:
        if mode in (CaptureMode.FLAT_FOUR, CaptureMode.TWO_THUMBS):
            image = self._slap(mode, position)
        else:
            image = self._single(position or 1, rolled=mode is CaptureMode.ROLLED)
        return _apply_skin_and_glass(image, self.config.faults, self._rng)

    # ---- frames ---------------------------------------------------------------------------

    def finger_present(self) -> bool:
        """A finger lies on the platen whenever a guide is lit (the subject follows it)."""
        self._check("finger_present")
        return not self.config.faults.no_finger and self._guided != 0

    def preview(self, mode: CaptureMode) -> Frame:
        """A 125 ppi live frame: empty glass, then the finger coming down, then steady."""
        self._check("preview")
        p = self._presentation
        if p is None or p.mode is not mode:
            p = self._presentation = _Presentation(mode=mode, position=self._guided)
        rolling = (mode is CaptureMode.ROLLED and self.config.image_source == "synthetic"
                   and not self.config.faults.no_finger)
        if rolling and not p.rolled_frames:
            p.rolled_frames = [f[::PREVIEW_SCALE, ::PREVIEW_SCALE].copy()
                               for f in self._roll_frames(p.position)]
        if rolling and p.frames_shown >= APPROACH_FRAMES:
            frame = p.rolled_frames[(p.frames_shown - APPROACH_FRAMES) % len(p.rolled_frames)]
            p.frames_shown += 1
            return Frame(image=frame, ppi=500 // PREVIEW_SCALE, sequence=p.frames_shown,
                         finger_present=True, meta={"rolling": True})
        if p.preview is None and rolling:  # a roll starts from the finger put down on its side
            p.preview = p.rolled_frames[0]
        if p.preview is None:
            full = self._final_image(mode, p.position)
            p.preview = full[::PREVIEW_SCALE, ::PREVIEW_SCALE].copy()
        blank = np.full_like(p.preview, 242)
        if self.config.faults.no_finger:
            image, present = blank, False
        elif p.frames_shown < APPROACH_FRAMES:
            weight = p.frames_shown / APPROACH_FRAMES
            image = (blank * (1 - weight) + p.preview * weight).astype(np.uint8)
            present = False
        else:
            image, present = p.preview, True
        p.frames_shown += 1
        return Frame(
            image=image, ppi=500 // PREVIEW_SCALE, sequence=p.frames_shown, finger_present=present
        )

    def capture(self, mode: CaptureMode) -> Frame:
        """The full-resolution image of what lies on the platen."""
        self._check("capture")
        if mode not in self.capabilities().modes:
            raise UnsupportedMode(str(mode), device=self.name, operation="capture")
        if self.config.faults.no_finger:
            raise NoFinger("no finger on the platen", device=self.name, operation="capture")
        if self._wedged > 0:
            self._wedged -= 1
            raise ScannerTimeout("no image within 5 s", device=self.name, operation="capture")
        limit = self.config.faults.unplug_after_captures
        if limit is not None and self._captures >= limit and not self._unplug_fired:
            self._unplugged = self._unplug_fired = True
            raise ScannerDisconnected("cable pulled", device=self.name, operation="capture")
        if self.config.capture_latency_s:
            time.sleep(self.config.capture_latency_s)
        position = self._presentation.position if self._presentation else self._guided
        image = self._final_image(mode, position)
        self._captures += 1
        self._presentation = None  # a retake shows a fresh placement
        return Frame(image=image, ppi=500, sequence=self._captures, finger_present=True,
                     meta={"mode": mode.value, "position": position})


def stitch_roll(frames: list[np.ndarray]) -> np.ndarray:
    """Compose a rolled print from the frames of a roll, as a livescan's firmware does.

    Each column is taken from the frame whose contact strip was centred nearest to it, so
    every part of the finger comes from the moment it lay flat on the glass (a plain minimum
    over the frames would ghost, since the skin moves while it rolls).
    """
    stack = np.stack(frames)
    dark = (stack < 128).sum(axis=1).astype(np.float64)  # frames x columns
    columns = np.arange(stack.shape[2], dtype=np.float64)
    weight = dark.sum(axis=1)
    centres = np.where(weight > 0, (dark * columns).sum(axis=1) / np.maximum(weight, 1), -1e9)
    owner = np.argmin(np.abs(columns[None, :] - centres[:, None]), axis=0)
    return stack[owner, :, np.arange(stack.shape[2])].T.copy()


def _place(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator, jitter: int
           ) -> np.ndarray:
    """Put a finger image on a capture window, near the centre, cropping what does not fit."""
    width, height = size
    canvas = np.full((height, width), 242, np.uint8)
    h, w = image.shape
    h_c, w_c = min(h, height), min(w, width)
    src = image[(h - h_c) // 2 : (h - h_c) // 2 + h_c, (w - w_c) // 2 : (w - w_c) // 2 + w_c]
    y0 = max(0, min(height - h_c, (height - h_c) // 2 + int(rng.integers(-jitter, jitter + 1))))
    x0 = max(0, min(width - w_c, (width - w_c) // 2 + int(rng.integers(-jitter, jitter + 1))))
    canvas[y0 : y0 + h_c, x0 : x0 + w_c] = np.minimum(canvas[y0 : y0 + h_c, x0 : x0 + w_c], src)
    return canvas


def _apply_skin_and_glass(
    image: np.ndarray, faults: EmulatedFaults, rng: np.random.Generator
) -> np.ndarray:
    """Dirty glass leaves blotches; the subject's skin condition is applied by the generator."""
    if faults.dirty_platen <= 0:
        return image
    h, w = image.shape
    out = image.astype(np.int16)
    for _ in range(int(3 + 12 * faults.dirty_platen)):
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        r = int(rng.integers(20, 20 + 120 * faults.dirty_platen + 1))
        y, x = np.ogrid[max(0, cy - r) : min(h, cy + r), max(0, cx - r) : min(w, cx + r)]
        blob = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        region = out[max(0, cy - r) : min(h, cy + r), max(0, cx - r) : min(w, cx + r)]
        region[blob] = np.minimum(region[blob], 120 + int(rng.integers(0, 60)))
    return out.clip(0, 255).astype(np.uint8)


def _load_folder(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".tif", ".bmp"})
    if not files:
        raise NoFinger(f"no images in {folder}", device="emulated-livescan", operation="open")
    return [np.asarray(Image.open(p).convert("L")) for p in files]
