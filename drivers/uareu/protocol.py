"""Constants of the DigitalPersona U.are.U 4000/4000B/4500 USB protocol.

DigitalPersona never published the protocol. Everything here is what libfprint's ``uru4000``
driver (Daniel Drake 2007-2008, Timo Teräs 2012) learnt from the devices, renamed into this
project's words: vendor control request 0x04 reads and writes device registers (``wValue`` is
the first register, ``wLength`` the count), the interrupt endpoint 0x81 reports events as a
big-endian 16-bit type in a 64-byte packet, and the bulk endpoint 0x82 delivers one frame: a
64-byte header, then up to 290 lines of 384 pixels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

VENDOR_ID = 0x05BA  # DigitalPersona, Inc.

EP_INTERRUPT = 0x81
EP_BULK = 0x82
USB_REQUEST = 0x04  # vendor request for register access
CTRL_IN = 0xC0  # vendor, device-to-host, recipient device
CTRL_OUT = 0x40  # vendor, host-to-device, recipient device
IRQ_LENGTH = 64
INTERFACE_CLASS = 0xFF  # vendor specific class, subclass and protocol

IMAGE_WIDTH = 384
IMAGE_HEIGHT = 290
FRAME_HEADER_BYTES = 64
FRAME_BYTES = FRAME_HEADER_BYTES + IMAGE_WIDTH * IMAGE_HEIGHT
IMAGE_PPI = 512  # DigitalPersona: "512 dpi (average x,y over the field)"
PLATEN_MM = (18.1, 14.6)  # nominal length x width of the capture area; the 384-pixel axis is
#                           the length


class Register(enum.IntEnum):
    """Device registers reached with the vendor control request."""

    HWSTAT = 0x07  # bit 7: low power; bit 2: something went wrong; bit 0/1: see driver
    SCRAMBLE_DATA_INDEX = 0x33  # write: key number, then the host's 32-bit seed (little-endian)
    SCRAMBLE_DATA_KEY = 0x34  # read 4 bytes: the frame key XOR the seed (little-endian)
    MODE = 0x4E
    DEVICE_INFO = 0xF0  # 16 bytes; bytes 4-5 and 10-11 hold two version numbers


class Mode(enum.IntEnum):
    """Values written to :attr:`Register.MODE`."""

    INIT = 0x00
    AWAIT_FINGER_ON = 0x10
    AWAIT_FINGER_OFF = 0x12
    CAPTURE = 0x20
    CAPTURE_AUX = 0x30
    OFF = 0x70
    READY = 0x80


class Interrupt(enum.IntEnum):
    """Event types on the interrupt endpoint (first two bytes, big-endian)."""

    SCANPWR_ON = 0x56AA  # the sensor powered up
    FINGER_ON = 0x0101
    FINGER_OFF = 0x0200
    DEATH = 0x0800  # libfprint: "indicates imminent failure (0 bytes transfer) of the next scan"


class BlockFlag(enum.IntFlag):
    """Flags of a block of lines in the frame header."""

    NOT_PRESENT = 0x01  # the block's lines are not in the data: repeat the following lines
    ENCRYPTED = 0x02
    NO_KEY_UPDATE = 0x04  # neither decoded nor does the key stream advance
    CHANGE_KEY = 0x80  # fetch the next key (key number + 1) before this block


HWSTAT_LOW_POWER = 0x80
HWSTAT_ERROR = 0x04


@dataclass(frozen=True, slots=True)
class Profile:
    """What differs between the supported products."""

    product_id: int
    name: str
    encryption: bool  # the frame is always scrambled (4000B/4500)
    flipped: bool  # the image arrives upside down and mirrored (4000)


PROFILES = {
    0x0007: Profile(0x0007, "U.are.U 4000", encryption=False, flipped=True),
    0x0008: Profile(0x0008, "U.are.U 4000 (keyboard)", encryption=False, flipped=True),
    0x000A: Profile(0x000A, "U.are.U 4000B/4500", encryption=True, flipped=False),
}
