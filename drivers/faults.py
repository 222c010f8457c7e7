"""Fault knobs and platen conditions shared by the device-side emulators.

The serial (R30x) and USB (U.are.U) emulators are product code: the demo and the tests run the
real drivers against them, and a technician can reproduce a field problem by setting the same
knob in config. This module holds the knobs (:class:`FaultConfig`), the seeded dice that decide
when a line fault strikes (:class:`FaultDice`), and what lies on the glass (:class:`Platen`): a
finger image source plus the skin and glass conditions (wet, dry, dirty) that real captures
suffer.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Makes a finger image: ``(size (width, height), ppi, rng) -> uint8 image`` of that size,
#: dark ridges on a light background.
FingerSource = Callable[[tuple[int, int], int, np.random.Generator], np.ndarray]

FingerSourceName = Literal["auto", "synthetic", "pattern"]

log = logging.getLogger(__name__)


class FaultConfig(BaseModel):
    """What an emulated scanner gets wrong, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: int = Field(0, description="Seed of the fault dice, so a failing run can be replayed.")
    armed_after: int = Field(
        0,
        ge=0,
        description=(
            "Exchanges answered cleanly before line faults (timeouts, drops, corruption, unplug "
            "mid-transfer) start: serial commands for the R30x emulator, image transfers for the "
            "U.are.U emulator. Lets a test pass the handshake and fail the capture."
        ),
    )
    unplug_after_bytes: int | None = Field(
        None,
        ge=0,
        description=(
            "The device vanishes once it has sent this many bytes to the host (serial line bytes "
            "or USB bulk bytes), as if the cable were pulled."
        ),
    )
    unplug_mid_transfer: bool = Field(
        False,
        description="The cable is pulled halfway through the first image transfer once armed.",
    )
    replug_after_s: float | None = Field(
        None,
        ge=0,
        description=(
            "After a pull the device comes back this many seconds later (None: it stays away "
            "until replugged by hand)."
        ),
    )
    timeout_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance that the device never answers an exchange (command or image transfer).",
    )
    corrupt_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Chance that an image data packet (serial) or an image frame header (USB) arrives "
            "with flipped bits."
        ),
    )
    drop_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Chance that an image data packet is lost on the serial line, or that a USB image "
            "transfer ends short."
        ),
    )
    line_noise_bytes: int = Field(
        0, ge=0, le=4096, description="Random bytes a noisy serial line adds before a packet."
    )
    line_noise_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Chance that a packet is preceded by line noise (when line_noise_bytes > 0).",
    )
    wrong_password: bool = Field(
        False,
        description=(
            "The module holds a password other than the configured one, so it refuses the "
            "handshake."
        ),
    )
    no_finger: bool = Field(False, description="Nobody puts a finger on the platen.")
    dirty_platen: float = Field(
        0.0, ge=0, le=1, description="Residue left on the glass (0 clean .. 1 smeared)."
    )
    moisture: float = Field(
        0.0, ge=-1, le=1, description="Skin condition: -1 very dry .. 0 normal .. 1 very wet."
    )


class FaultDice:
    """Seeded decisions about line faults; one per emulated device."""

    def __init__(self, faults: FaultConfig) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self.exchanges = 0

    @property
    def armed(self) -> bool:
        """True once ``armed_after`` exchanges have been answered."""
        return self.exchanges >= self.faults.armed_after

    def count_exchange(self) -> None:
        """Note that one more exchange (command, transfer) has been served."""
        self.exchanges += 1

    def roll(self, probability: float) -> bool:
        """True with ``probability`` once armed; never before."""
        return self.armed and probability > 0 and self._rng.random() < probability

    def noise(self) -> bytes:
        """Garbage a noisy line puts in front of a packet (often empty)."""
        count = self.faults.line_noise_bytes
        if count == 0 or self._rng.random() >= self.faults.line_noise_rate:
            return b""
        return self._rng.randbytes(count)

    def flip_bits(self, data: bytes, start: int = 0) -> bytes:
        """``data`` with one random byte at or after ``start`` XORed with a non-zero mask."""
        if len(data) <= start:
            return data
        out = bytearray(data)
        index = self._rng.randrange(start, len(out))
        out[index] ^= self._rng.randrange(1, 256)
        return bytes(out)

    def randbits(self, bits: int) -> int:
        """Random integer of ``bits`` bits from the same seeded stream."""
        return self._rng.getrandbits(bits)


# --- What lies on the platen ------------------------------------------------------------------


def ridge_pattern(seed: int) -> FingerSource:
    """A deterministic loop-like ridge pattern for finger ``seed`` (no dependencies, fast).

    Not a realistic fingerprint; it has ridges at a realistic period (about 0.46 mm), an
    elliptical finger outline with background at the top and bottom rows, and small per-
    impression shifts, which is what driver tests need.
    """
    params = random.Random(seed)
    warp = [params.uniform(0, 2 * math.pi) for _ in range(4)]
    squash = params.uniform(1.1, 1.4)

    def source(size: tuple[int, int], ppi: int, rng: np.random.Generator) -> np.ndarray:
        width, height = size
        scale = ppi / 500.0
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        cx = width / 2 + float(rng.normal(0, 3 * scale))
        cy = height * 0.55 + float(rng.normal(0, 3 * scale))
        bend = 6 * scale * np.sin(xx / (37 * scale) + warp[0]) + 5 * scale * np.cos(
            yy / (29 * scale) + warp[1]
        )
        radius = np.sqrt((xx - cx) ** 2 + ((yy - cy) * squash) ** 2) + bend
        ridges = 0.5 + 0.5 * np.cos(2 * np.pi * radius / (9.0 * scale) + warp[2])
        ex, ey = 0.40 * width, 0.42 * height
        outline = ((xx - cx) / ex) ** 2 + ((yy - cy) / ey) ** 2
        contact = np.clip((1.0 - outline) * 6.0, 0.0, 1.0)
        image = 235.0 - 190.0 * ridges * contact + rng.normal(0, 3.0, size=(height, width))
        return np.clip(image, 0, 255).astype(np.uint8)

    return source


@lru_cache(maxsize=4)
def _synthetic_hand(seed: int) -> Any:
    from drivers import synthetic  # type: ignore[attr-defined]

    return synthetic.generate_hand(seed)


class SyntheticFinger:
    """A finger from :mod:`drivers.synthetic`; its hand grows in the background (seconds).

    Until it is grown the finger is not ready, and the platen stays empty, as if the subject had
    not yet put the finger down: an emulator thread never stalls past the driver's time limit.
    """

    def __init__(self, seed: int, moisture: float) -> None:
        self._seed = seed
        self._moisture = moisture
        self._grown = threading.Event()
        threading.Thread(target=self._grow, name="synthetic-finger", daemon=True).start()

    def _grow(self) -> None:
        try:
            _synthetic_hand(self._seed)
        except Exception:  # thread boundary: the first impression raises it again
            log.exception("growing synthetic finger %d failed", self._seed)
        finally:
            self._grown.set()

    @property
    def ready(self) -> bool:
        """True once the hand has grown."""
        return self._grown.is_set()

    def __call__(self, size: tuple[int, int], ppi: int, rng: np.random.Generator) -> np.ndarray:
        """One impression of the finger, fitted to the sensor."""
        master = _synthetic_hand(self._seed)[self._seed % 10]
        image = np.asarray(master.impression(rng, rolled=False, moisture=self._moisture).image)
        return fit_to_sensor(image, size, from_ppi=500, to_ppi=ppi)


def synthetic_finger(seed: int, moisture: float) -> SyntheticFinger | None:
    """A finger from :mod:`drivers.synthetic` when that module is installed, else ``None``."""
    try:
        from drivers import synthetic  # type: ignore[attr-defined]
    except ImportError:
        return None
    if not hasattr(synthetic, "generate_hand"):
        return None
    return SyntheticFinger(seed, moisture)


def fit_to_sensor(
    image: np.ndarray, size: tuple[int, int], *, from_ppi: int, to_ppi: int
) -> np.ndarray:
    """Rescale ``image`` to the sensor's resolution and centre-crop or pad it to ``size``."""
    from PIL import Image

    if abs(from_ppi - to_ppi) > from_ppi * 0.01:
        h, w = image.shape
        factor = to_ppi / from_ppi
        resized = Image.fromarray(image).resize(
            (max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR
        )
        image = np.asarray(resized)
    width, height = size
    canvas = np.full((height, width), 255, dtype=np.uint8)
    h, w = image.shape
    src_y, src_x = max(0, (h - height) // 2), max(0, (w - width) // 2)
    dst_y, dst_x = max(0, (height - h) // 2), max(0, (width - w) // 2)
    ch, cw = min(h, height), min(w, width)
    canvas[dst_y : dst_y + ch, dst_x : dst_x + cw] = image[src_y : src_y + ch, src_x : src_x + cw]
    return canvas


def apply_skin(image: np.ndarray, moisture: float, rng: np.random.Generator) -> np.ndarray:
    """Wet skin floods the valleys (ridges merge, image darkens); dry skin breaks ridges."""
    if moisture == 0:
        return image
    out = image.astype(np.float32)
    if moisture > 0:
        # A 3x3 minimum spreads dark ridge ink into the valleys, more as the skin gets wetter.
        spread = out.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                spread = np.minimum(spread, np.roll(np.roll(out, dy, axis=0), dx, axis=1))
        out = (1 - moisture) * out + moisture * spread - 25.0 * moisture
    else:
        dryness = -moisture
        gaps = rng.random(out.shape) < 0.35 * dryness
        out = np.where(gaps, np.maximum(out, 200.0), out) + 30.0 * dryness
    return np.clip(out, 0, 255).astype(np.uint8)


def apply_glass(image: np.ndarray, dirt: float, rng: np.random.Generator) -> np.ndarray:
    """Residue on the glass: grey blotches that sit in the same place on every capture."""
    if dirt <= 0:
        return image
    h, w = image.shape
    # The residue does not move between captures, so it comes from its own fixed seed.
    place = np.random.default_rng(1234)
    out = image.astype(np.int16)
    for _ in range(int(2 + 8 * dirt)):
        cy, cx = int(place.integers(0, h)), int(place.integers(0, w))
        r = int(place.integers(6, 6 + 40 * dirt + 1))
        y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r), max(0, cx - r), min(w, cx + r)
        y, x = np.ogrid[y0:y1, x0:x1]
        blob = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        region = out[y0:y1, x0:x1]
        region[blob] = np.minimum(region[blob], 110 + int(place.integers(0, 60)))
    out += rng.integers(-2, 3, size=out.shape, dtype=np.int16)
    return out.clip(0, 255).astype(np.uint8)


class Platen:
    """The glass of an emulated scanner: whether a finger lies on it and what it looks like.

    Tests may lift or place the finger from another thread while an emulator runs.
    """

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        finger_source: FingerSourceName | FingerSource = "auto",
        finger_seed: int = 1,
    ) -> None:
        self.faults = faults or FaultConfig()
        self._lock = threading.Lock()
        self._finger_down = not self.faults.no_finger
        self._rng = np.random.default_rng(finger_seed + 7919 * self.faults.seed)
        self._skin_applied_by_source = False
        if callable(finger_source):
            self._source: FingerSource = finger_source
        elif finger_source == "pattern":
            self._source = ridge_pattern(finger_seed)
        else:
            synthetic = synthetic_finger(finger_seed, self.faults.moisture)
            if synthetic is None and finger_source == "synthetic":
                raise RuntimeError("finger_source 'synthetic' needs drivers.synthetic")
            self._source = synthetic or ridge_pattern(finger_seed)
            self._skin_applied_by_source = synthetic is not None
        self.last_impression: np.ndarray | None = None

    @property
    def finger_down(self) -> bool:
        """True while a finger lies on the glass (and the finger source is ready)."""
        with self._lock:
            return self._finger_down and getattr(self._source, "ready", True)

    def place_finger(self) -> None:
        """Put the finger down (ignored when the ``no_finger`` fault is set)."""
        with self._lock:
            self._finger_down = not self.faults.no_finger

    def lift_finger(self) -> None:
        """Take the finger off the glass."""
        with self._lock:
            self._finger_down = False

    def impression(self, size: tuple[int, int], ppi: int) -> np.ndarray | None:
        """What the sensor sees now (``None`` without a finger); kept in ``last_impression``."""
        if not self.finger_down:
            return None
        image = np.asarray(self._source(size, ppi, self._rng), dtype=np.uint8)
        if image.shape != (size[1], size[0]):
            image = fit_to_sensor(image, size, from_ppi=ppi, to_ppi=ppi)
        if not self._skin_applied_by_source:
            image = apply_skin(image, self.faults.moisture, self._rng)
        image = apply_glass(image, self.faults.dirty_platen, self._rng)
        self.last_impression = image
        return image
