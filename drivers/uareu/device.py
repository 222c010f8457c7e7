"""The emulated U.are.U reader itself: registers, events and frames, without a USB library.

:class:`UareUDevice` answers like the hardware as libfprint describes it: register reads and
writes, the scan-power event after a power-up, finger-on and finger-off events in the await
modes, and in capture mode one frame whose blocks are scrambled with per-key-number keys the
device only hands out XORed with the host's seed. The pyusb side lives in
:mod:`drivers.uareu.emulator`. Faults come from :class:`~drivers.faults.FaultConfig`: a pulled
cable, frames that never come, garbled headers, short frames, no finger, wet, dry or dirty
prints. The strings and version numbers are the emulator's own, not copied from a device.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections import deque

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.faults import FaultConfig, FaultDice, FingerSourceName, Platen
from drivers.uareu.image import Block, encode_frame, scramble
from drivers.uareu.protocol import (
    HWSTAT_LOW_POWER,
    IMAGE_HEIGHT,
    IMAGE_PPI,
    IMAGE_WIDTH,
    PROFILES,
    BlockFlag,
    Interrupt,
    Mode,
    Register,
)

#: The emulator's frame layout: 288 lines sent, a key change, a plain block, and two lines the
#: device did not read (they repeat the two that follow).
FRAME_LAYOUT = (
    Block(BlockFlag.ENCRYPTED, 100),
    Block(BlockFlag.CHANGE_KEY | BlockFlag.ENCRYPTED, 100),
    Block(BlockFlag(0), 40),
    Block(BlockFlag.NOT_PRESENT | BlockFlag.NO_KEY_UPDATE, 2),
    Block(BlockFlag.ENCRYPTED, 48),
)


class UareUEmulatorConfig(BaseModel):
    """Settings of one emulated U.are.U reader."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    product_id: int = Field(0x000A, description="0x0007 (4000), 0x0008, or 0x000A (4000B/4500).")
    scrambles: bool = Field(
        False, description="A 4000 whose firmware scrambles its frames (the 4000B always does)."
    )
    initial_hwstat: int = Field(
        HWSTAT_LOW_POWER, ge=0, le=0xFF, description="HWSTAT at power-on (0x85: confused device)."
    )
    secret: int = Field(0x5EC2E7, description="Seeds the device's scrambling keys.")
    finger_source: FingerSourceName = Field(
        "auto", description="'synthetic' (drivers.synthetic), 'pattern' (built in), or 'auto'."
    )
    finger_seed: int = Field(1, description="Which virtual finger lies on the platen.")
    faults: FaultConfig = Field(default_factory=FaultConfig, description="Fault knobs.")

    @field_validator("product_id")
    @classmethod
    def _known_product(cls, value: int) -> int:
        if value not in PROFILES:
            raise ValueError(f"product must be one of {', '.join(f'0x{p:04x}' for p in PROFILES)}")
        return value


class Unplugged(Exception):
    """Raised inside the model when the emulated cable is pulled."""


class UareUDevice:
    """The emulated reader: registers, events and frames, without any USB library."""

    def __init__(self, config: UareUEmulatorConfig | None = None) -> None:
        self.config = config or UareUEmulatorConfig()
        self.profile = PROFILES[self.config.product_id]
        self.platen = Platen(self.config.faults, finger_source=self.config.finger_source,
                             finger_seed=self.config.finger_seed)
        self.dice = FaultDice(self.config.faults)
        self.serial_number = "{" + str(uuid.UUID(int=random.Random(self.config.secret)
                                                 .getrandbits(128))).upper() + "}"
        self._plugged = True
        self._pulled_at = 0.0
        self.generation = 0
        self.bulk_bytes_sent = 0
        self.frames = 0
        self.last_image: np.ndarray | None = None  # what a correct driver returns for a frame
        self._cable_pulled_once = False
        self._rng = random.Random(self.config.secret ^ self.config.faults.seed)
        self.power_on()

    def power_on(self) -> None:
        """Registers and state after power-on or a USB reset."""
        self.registers = bytearray(0x2020)
        self.registers[Register.HWSTAT] = self.config.initial_hwstat
        self.registers[Register.DEVICE_INFO : Register.DEVICE_INFO + 16] = bytes(
            [0, 0, 0, 0, 0x01, 0x04, 0, 0, 0, 0, 0x00, 0x21, 0, 0, 0, 0]
        )
        self.mode = Mode.INIT
        self._events: deque[int] = deque()
        self._finger_reported = False

    # ---- plugging -----------------------------------------------------------------------

    @property
    def plugged(self) -> bool:
        """True while on the bus; with ``replug_after_s`` a pulled reader comes back."""
        back_after = self.config.faults.replug_after_s
        if not self._plugged and back_after is not None:
            if time.monotonic() - self._pulled_at >= back_after:
                self.replug()
        return self._plugged

    def unplug(self) -> None:
        """Pull the cable: every handle dies, the device leaves the bus."""
        self._plugged = False
        self._pulled_at = time.monotonic()

    def replug(self) -> None:
        """Plug it back in: a fresh power-on state (old handles stay dead)."""
        self._plugged = True
        self.generation += 1
        self.power_on()

    def key_of(self, key_number: int) -> int:
        """The device's scrambling key for ``key_number``."""
        digest = hashlib.sha256(f"{self.config.secret}:{key_number & 0xFF}".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    # ---- registers ----------------------------------------------------------------------

    def read_registers(self, first: int, count: int) -> bytes:
        """Vendor control IN: ``count`` registers from ``first``."""
        if first + count > len(self.registers):
            raise ValueError("register out of range")
        return bytes(self.registers[first : first + count])

    def write_registers(self, first: int, data: bytes) -> None:
        """Vendor control OUT, with the side effects the driver relies on."""
        if first + len(data) > len(self.registers):
            raise ValueError("register out of range")
        old_hwstat = self.registers[Register.HWSTAT]
        self.registers[first : first + len(data)] = data
        touched = range(first, first + len(data))
        if Register.HWSTAT in touched:
            new = self.registers[Register.HWSTAT]
            if old_hwstat & HWSTAT_LOW_POWER and not new & HWSTAT_LOW_POWER:
                self._events.append(Interrupt.SCANPWR_ON)
        if Register.MODE in touched:
            self.mode = Mode(self.registers[Register.MODE])
            self._finger_reported = False
        if first == Register.SCRAMBLE_DATA_INDEX and len(data) >= 5:
            seed = int.from_bytes(data[1:5], "little")
            answer = (self.key_of(data[0]) ^ seed).to_bytes(4, "little")
            self.registers[Register.SCRAMBLE_DATA_KEY : Register.SCRAMBLE_DATA_KEY + 4] = answer

    # ---- endpoints ----------------------------------------------------------------------

    def interrupt(self) -> int | None:
        """The next event for the interrupt endpoint, or ``None`` when there is none."""
        if self._events:
            return self._events.popleft()
        if self._finger_reported:
            return None
        finger = self.platen.finger_down
        if (self.mode == Mode.AWAIT_FINGER_ON and finger) or (
            self.mode == Mode.AWAIT_FINGER_OFF and not finger
        ):
            self._finger_reported = True
            return Interrupt.FINGER_ON if finger else Interrupt.FINGER_OFF
        return None

    def frame(self) -> bytes | None:
        """One bulk frame in capture mode (``None``: the transfer times out).

        Raises :class:`Unplugged` when a fault pulls the cable during the transfer.
        """
        if self.mode != Mode.CAPTURE:
            return None
        faults = self.config.faults
        armed = self.dice.armed
        if self.dice.roll(faults.timeout_probability):
            self.dice.count_exchange()
            return None
        data = self._build_frame()
        if self.dice.roll(faults.corrupt_probability):
            garbled = bytearray(data)
            garbled[5] ^= 0x80  # line count's high byte: the header no longer holds together
            data = bytes(garbled)
        if self.dice.roll(faults.drop_probability):
            data = data[: len(data) // 2]
        limit = faults.unplug_after_bytes
        cut = (faults.unplug_mid_transfer and armed) or (
            limit is not None and self.bulk_bytes_sent + len(data) > limit
        )
        self.dice.count_exchange()
        if cut and not self._cable_pulled_once:
            self._cable_pulled_once = True  # a replugged reader works until told otherwise
            self.unplug()
            raise Unplugged
        self.bulk_bytes_sent += len(data)
        self.frames += 1
        return data

    def _build_frame(self) -> bytes:
        seen = self.platen.impression((IMAGE_WIDTH, IMAGE_HEIGHT), IMAGE_PPI)
        if seen is None:  # an empty glass still gives a frame: background and sensor noise
            noise = np.random.default_rng(self.frames).normal(0, 3, (IMAGE_HEIGHT, IMAGE_WIDTH))
            seen = np.clip(235 + noise, 0, 255).astype(np.uint8)
        wire = 255 - seen  # the sensor reports light ridges
        if self.profile.flipped:
            wire = wire[::-1, ::-1]
        wire = wire.copy()
        present, line = [], 0
        for block in FRAME_LAYOUT:
            if block.flags & BlockFlag.NOT_PRESENT:
                wire[line : line + block.lines] = wire[line + block.lines : line + 2 * block.lines]
            else:
                present.append(wire[line : line + block.lines])
            line += block.lines
        truth = 255 - wire
        self.last_image = truth[::-1, ::-1].copy() if self.profile.flipped else truth
        rows = np.concatenate(present)
        key_number = self._rng.randrange(256)
        if self.profile.encryption or self.config.scrambles:
            rows = scramble(rows, key_number, FRAME_LAYOUT, self.key_of,
                            lambda: self._rng.randrange(256))
        return encode_frame(key_number, FRAME_LAYOUT, rows)
