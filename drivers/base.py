"""The blocking scanner interface every driver implements.

A driver object is touched only by its owner thread (see :mod:`drivers.worker`); every method
here may block. Drivers declare what they can do so the capture workflow never asks for a mode
the device lacks.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CaptureMode(enum.StrEnum):
    """What is on the platen when a capture is taken."""

    FLAT_SINGLE = "flat_single"
    FLAT_FOUR = "flat_four"
    TWO_THUMBS = "two_thumbs"
    ROLLED = "rolled"


class Indicator(enum.StrEnum):
    """Operator-visible signals a scanner may have."""

    LED_OFF = "led_off"
    LED_READY = "led_ready"
    LED_OK = "led_ok"
    LED_ERROR = "led_error"
    BEEP = "beep"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the device says it is."""

    vendor: str
    model: str
    serial: str = ""
    firmware: str = ""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the device can do, declared by the driver."""

    platen_mm: tuple[float, float]
    ppi: int
    image_size: tuple[int, int]  # (width, height) in pixels
    modes: frozenset[CaptureMode]
    preview_fps: float
    indicators: frozenset[Indicator] = frozenset()
    #: Capture window per mode where it differs from ``image_size`` (a ten-print livescan rolls
    #: one finger in a smaller window than the full platen it uses for slaps).
    mode_sizes: Mapping[CaptureMode, tuple[int, int]] = field(default_factory=dict)
    #: Resolution of preview frames when the device decimates them (None: same as ``ppi``).
    preview_ppi: int | None = None

    def size_for(self, mode: CaptureMode) -> tuple[int, int]:
        """(width, height) of a capture in ``mode``."""
        return self.mode_sizes.get(mode, self.image_size)

    def preview_size_for(self, mode: CaptureMode) -> tuple[int, int]:
        """(width, height) of a preview frame in ``mode``."""
        width, height = self.size_for(mode)
        if self.preview_ppi is None or self.preview_ppi == self.ppi:
            return width, height
        factor = self.ppi // self.preview_ppi
        return -(-width // factor), -(-height // factor)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (telemetry, admin page)."""
        return {
            "platen_mm": list(self.platen_mm),
            "ppi": self.ppi,
            "image_size": list(self.image_size),
            "modes": sorted(m.value for m in self.modes),
            "mode_sizes": {m.value: list(v) for m, v in sorted(self.mode_sizes.items())},
            "preview_fps": self.preview_fps,
            "preview_ppi": self.preview_ppi or self.ppi,
            "indicators": sorted(i.value for i in self.indicators),
        }


@dataclass(slots=True)
class Frame:
    """A grayscale image from the device: uint8, dark ridges on a light background."""

    image: np.ndarray
    ppi: int
    sequence: int = 0
    finger_present: bool = True
    meta: dict[str, Any] = field(default_factory=dict)


class ScannerDriver(abc.ABC):
    """A fingerprint scanner, driven synchronously from its owner thread."""

    #: The config ``type`` that selects this driver.
    type_name: str = ""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Short device name used in errors and logs (e.g. ``serial:/dev/ttyUSB0``)."""

    @abc.abstractmethod
    def open(self) -> None:
        """Open the device and bring it to a known state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice."""

    @abc.abstractmethod
    def identity(self) -> Identity:
        """Vendor, model, serial and firmware."""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """Platen, resolution, modes and preview rate."""

    @abc.abstractmethod
    def finger_present(self) -> bool:
        """True when a finger lies on the platen."""

    @abc.abstractmethod
    def preview(self, mode: CaptureMode) -> Frame:
        """One live preview frame (may be lower quality than a capture)."""

    @abc.abstractmethod
    def capture(self, mode: CaptureMode) -> Frame:
        """A full-quality image; never a half-received one."""

    def preview_frames(self, mode: CaptureMode, count: int) -> Iterator[Frame]:
        """``count`` preview frames in a row."""
        for _ in range(count):
            yield self.preview(mode)

    def indicate(self, indicator: Indicator) -> None:  # noqa: B027 - optional hardware
        """Drive an LED or the beeper; devices without one ignore it."""

    def guide(self, position: int) -> None:  # noqa: B027 - optional hardware
        """Show the subject which finger comes next (finger-guide LEDs on livescan devices).

        ``position`` is the ANSI/NIST-ITL finger position code. Devices without guides ignore it.
        """

    def shutdown(self) -> None:  # noqa: B027 - most drivers hold nothing beyond the device
        """Release what the driver holds besides the device (a helper process).

        Called once, after the last :meth:`close`, when the station stops with the driver.
        """

    def reset(self) -> None:
        """Bring a wedged device back: close and reopen by default."""
        self.close()
        self.open()
