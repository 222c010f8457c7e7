"""Constants of the 0xEF01 packet protocol spoken by the UART optical fingerprint modules.

Hangzhou Grow R305/R307/R503, ZFM-20 and Synochip AS608 share one command set ("instruction
system" in the Grow user manuals). Names follow the manuals: instruction mnemonics as printed
there (``GenImg``, ``UpImage``, ``VfyPwd`` ...), confirmation codes after their descriptions.
Only what the booking station needs is listed; the template library commands are left out.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER = 0xEF01
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_PASSWORD = 0x00000000
DEFAULT_BAUDRATE = 57600  # N = 6 in the manuals' "9600 x N bps"
BAUD_UNIT = 9600

#: The image buffer the modules upload: 256 x 288 pixels, 4 bits each, two pixels per byte,
#: high nibble first (manual: "UpImage ... the pixel has 4 bits of grey"); about 500 ppi.
IMAGE_WIDTH = 256
IMAGE_HEIGHT = 288
IMAGE_PPI = 500
IMAGE_BYTES = IMAGE_WIDTH * IMAGE_HEIGHT // 2

#: Largest payload of one packet: a 256-byte data packet (packet size code 3).
MAX_PAYLOAD = 256


class PacketId(enum.IntEnum):
    """Package identifier (PID)."""

    COMMAND = 0x01
    DATA = 0x02  # "data packet, has following packet"
    ACK = 0x07
    END_DATA = 0x08  # "end packet"


class Instruction(enum.IntEnum):
    """Instruction codes, named as in the Grow manuals."""

    GenImg = 0x01  # collect a finger image into ImageBuffer
    UpImage = 0x0A  # upload ImageBuffer to the host as data packets
    ReadSysPara = 0x0F  # read the basic parameter list
    VfyPwd = 0x13  # verify the handshake password
    TempleteNum = 0x1D  # number of valid templates (spelling as in the manual)
    AuraLedConfig = 0x35  # R503 ring light: control, speed, colour index, times
    OpenLED = 0x50  # plain LED on (modules without the aura ring)
    CloseLED = 0x51  # plain LED off


class ConfirmationCode(enum.IntEnum):
    """Confirmation codes of acknowledge packets, named after the manual's descriptions."""

    OK = 0x00
    PACKET_RECEIVE_ERROR = 0x01  # "error when receiving data package"
    NO_FINGER = 0x02  # "no finger on the sensor"
    ENROLL_FAIL = 0x03  # "fail to enroll the finger" / "fail to collect finger"
    IMAGE_DISORDERLY = 0x06  # "over-disorderly fingerprint image"
    FEATURE_FAIL = 0x07  # "lackness of character point or over-smallness of image"
    NO_MATCH = 0x08
    NOT_FOUND = 0x09
    ENROLL_MISMATCH = 0x0A
    BAD_LOCATION = 0x0B
    TEMPLATE_READ_FAIL = 0x0C
    UPLOAD_TEMPLATE_FAIL = 0x0D
    CANNOT_RECEIVE_DATA = 0x0E  # "module can't receive the following data packages"
    UPLOAD_IMAGE_FAIL = 0x0F  # "error when uploading image"
    DELETE_FAIL = 0x10
    CLEAR_LIBRARY_FAIL = 0x11
    WRONG_PASSWORD = 0x13
    NO_VALID_PRIMARY_IMAGE = 0x15  # "fail to generate image for lackness of valid primary image"
    FLASH_WRITE_ERROR = 0x18
    NO_DEFINITION_ERROR = 0x19
    INVALID_REGISTER = 0x1A
    BAD_REGISTER_CONFIG = 0x1B
    WRONG_NOTEPAD_PAGE = 0x1C
    COMMUNICATION_PORT_FAIL = 0x1D


class AuraControl(enum.IntEnum):
    """R503 ``AuraLedConfig`` control byte."""

    BREATHING = 0x01
    FLASHING = 0x02
    ALWAYS_ON = 0x03
    ALWAYS_OFF = 0x04
    GRADUAL_ON = 0x05
    GRADUAL_OFF = 0x06


class AuraColour(enum.IntEnum):
    """R503 ``AuraLedConfig`` colour index (red, blue and purple on every R503)."""

    RED = 0x01
    BLUE = 0x02
    PURPLE = 0x03


def packet_size_from_code(code: int) -> int:
    """Data packet payload size for the system parameter's size code (0..3 -> 32..256)."""
    if not 0 <= code <= 3:
        raise ValueError(f"packet size code {code} is not 0..3")
    return 32 << code


_SYS_PARA = struct.Struct(">HHHHIHH")


@dataclass(frozen=True, slots=True)
class SystemParameters:
    """The 16-byte basic parameter list returned by ``ReadSysPara``."""

    status_register: int
    system_identifier: int  # 0x0009 on the Grow modules
    library_size: int
    security_level: int
    address: int
    packet_size_code: int
    baud_multiplier: int

    @property
    def packet_size(self) -> int:
        """Data packet payload size in bytes."""
        return packet_size_from_code(self.packet_size_code)

    @property
    def baudrate(self) -> int:
        """The baud rate the module is set to (9600 x N)."""
        return BAUD_UNIT * self.baud_multiplier

    @classmethod
    def decode(cls, params: bytes) -> SystemParameters:
        """Parse the parameter list (the ack payload after the confirmation code)."""
        if len(params) < _SYS_PARA.size:
            raise ValueError(f"system parameters are {_SYS_PARA.size} bytes, got {len(params)}")
        fields = _SYS_PARA.unpack_from(params)
        result = cls(*fields)
        result.packet_size  # noqa: B018 - validates the size code
        return result

    def encode(self) -> bytes:
        """The 16-byte parameter list, as the module sends it."""
        return _SYS_PARA.pack(
            self.status_register,
            self.system_identifier,
            self.library_size,
            self.security_level,
            self.address,
            self.packet_size_code,
            self.baud_multiplier,
        )
