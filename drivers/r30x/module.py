"""The fingerprint module itself, as the emulator models it: command packet in, answer out.

Sans-IO: :meth:`R30xModule.answer` takes one checked command packet and returns the packets the
module sends back, in order. The line (pacing, noise, lost packets, a pulled cable) is the
emulator's business (:mod:`drivers.r30x.emulator`), so this model stays a plain state machine
that tests can drive without a port.

Where the manuals are silent the model makes a choice and says so:

* a module whose password is not the factory default answers every command other than ``VfyPwd``
  with ``WRONG_PASSWORD`` until the handshake succeeds;
* ``UpImage`` before any successful ``GenImg`` answers ``UPLOAD_IMAGE_FAIL``;
* an instruction it does not know answers ``NO_DEFINITION_ERROR``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from drivers.faults import Platen
from drivers.r30x.codec import Packet, pack_image
from drivers.r30x.protocol import (
    BAUD_UNIT,
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    DEFAULT_PASSWORD,
    IMAGE_HEIGHT,
    IMAGE_PPI,
    IMAGE_WIDTH,
    ConfirmationCode,
    Instruction,
    PacketId,
    SystemParameters,
)

WRONG_PASSWORD_VALUE = 0x5A5A5A5A  # what a module "set by someone else" holds


@dataclass(slots=True)
class LedState:
    """What the module's light shows, for tests and the demo page."""

    on: bool = False
    control: int = 0
    colour: int = 0
    speed: int = 0
    times: int = 0


@dataclass(slots=True)
class R30xModule:
    """State of one emulated module."""

    platen: Platen
    address: int = DEFAULT_ADDRESS
    password: int = DEFAULT_PASSWORD
    packet_size: int = 128
    baudrate: int = DEFAULT_BAUDRATE
    library_size: int = 200
    security_level: int = 3
    verified: bool = False
    led: LedState = field(default_factory=LedState)
    image_buffer: np.ndarray | None = None
    commands: int = 0

    def __post_init__(self) -> None:
        if self.packet_size not in (32, 64, 128, 256):
            raise ValueError(f"packet size {self.packet_size} is not 32, 64, 128 or 256")
        if self.baudrate % BAUD_UNIT or not 1 <= self.baudrate // BAUD_UNIT <= 12:
            raise ValueError(f"baud rate {self.baudrate} is not 9600 x N with N in 1..12")
        if self.platen.faults.wrong_password:
            self.password = WRONG_PASSWORD_VALUE

    @property
    def system_parameters(self) -> SystemParameters:
        """What ``ReadSysPara`` reports."""
        return SystemParameters(
            # Status register bits: 2 = handshake password verified, 3 = image buffer valid.
            status_register=(0x0004 if self.verified else 0) | (0x0008 if self.image_buffer
                                                                  is not None else 0),
            system_identifier=0x0009,
            library_size=self.library_size,
            security_level=self.security_level,
            address=self.address,
            packet_size_code=(self.packet_size // 32).bit_length() - 1,
            baud_multiplier=self.baudrate // BAUD_UNIT,
        )

    def answer(self, packet: Packet) -> list[tuple[PacketId, bytes]]:
        """The packets (PID, payload) the module sends in reply to ``packet``."""
        if packet.pid != PacketId.COMMAND:
            return []  # data packets only follow DownImage/DownChar, which are not modelled
        self.commands += 1
        code, params = packet.payload[0], packet.payload[1:]
        if code == Instruction.VfyPwd:
            return [self._verify(params)]
        if not self.verified and self.password != DEFAULT_PASSWORD:
            return [_ack(ConfirmationCode.WRONG_PASSWORD)]
        if code == Instruction.ReadSysPara:
            return [_ack(ConfirmationCode.OK, self.system_parameters.encode())]
        if code == Instruction.GenImg:
            return [self._gen_img()]
        if code == Instruction.UpImage:
            return self._up_image()
        if code == Instruction.TempleteNum:
            return [_ack(ConfirmationCode.OK, b"\x00\x00")]
        if code == Instruction.AuraLedConfig:
            return [self._aura(params)]
        if code in (Instruction.OpenLED, Instruction.CloseLED):
            self.led.on = code == Instruction.OpenLED
            return [_ack(ConfirmationCode.OK)]
        return [_ack(ConfirmationCode.NO_DEFINITION_ERROR)]

    def receive_error(self) -> list[tuple[PacketId, bytes]]:
        """The answer to a packet that arrived with a bad checksum."""
        return [_ack(ConfirmationCode.PACKET_RECEIVE_ERROR)]

    def _verify(self, params: bytes) -> tuple[PacketId, bytes]:
        if len(params) != 4:
            return _ack(ConfirmationCode.PACKET_RECEIVE_ERROR)
        (given,) = struct.unpack(">I", params)
        self.verified = given == self.password
        return _ack(ConfirmationCode.OK if self.verified else ConfirmationCode.WRONG_PASSWORD)

    def _gen_img(self) -> tuple[PacketId, bytes]:
        image = self.platen.impression((IMAGE_WIDTH, IMAGE_HEIGHT), IMAGE_PPI)
        if image is None:
            return _ack(ConfirmationCode.NO_FINGER)
        self.image_buffer = image
        return _ack(ConfirmationCode.OK)

    def _up_image(self) -> list[tuple[PacketId, bytes]]:
        if self.image_buffer is None:
            return [_ack(ConfirmationCode.UPLOAD_IMAGE_FAIL)]
        data = pack_image(self.image_buffer)
        size = self.packet_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        packets: list[tuple[PacketId, bytes]] = [_ack(ConfirmationCode.OK)]
        packets += [(PacketId.DATA, chunk) for chunk in chunks[:-1]]
        packets.append((PacketId.END_DATA, chunks[-1]))
        return packets

    def _aura(self, params: bytes) -> tuple[PacketId, bytes]:
        if len(params) != 4:
            return _ack(ConfirmationCode.PACKET_RECEIVE_ERROR)
        control, speed, colour, times = params
        self.led = LedState(on=control != 0x04, control=control, colour=colour, speed=speed,
                            times=times)
        return _ack(ConfirmationCode.OK)


def _ack(code: ConfirmationCode, params: bytes = b"") -> tuple[PacketId, bytes]:
    return PacketId.ACK, bytes([int(code)]) + params
