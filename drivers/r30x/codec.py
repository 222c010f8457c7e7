"""Sans-IO codec of the 0xEF01 packet protocol: bytes in, packets out, and the 4-bit image.

A packet on the wire::

    EF 01 | address (4, big-endian) | PID (1) | length (2) | payload (length - 2) | checksum (2)

where ``length`` counts the payload and the checksum, and the checksum is the low 16 bits of the
sum of the PID byte, both length bytes and every payload byte. A UART line drops and garbles
bytes, so :class:`PacketDecoder` resynchronises on the next header after garbage and never
returns a packet whose checksum fails; it counts what it threw away so a technician can see a
noisy cable.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from drivers.r30x.protocol import (
    DEFAULT_ADDRESS,
    HEADER,
    IMAGE_BYTES,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    MAX_PAYLOAD,
    PacketId,
)

_HEAD = struct.Struct(">HIBH")  # header, address, PID, length
HEAD_SIZE = _HEAD.size  # 9
CHECKSUM_SIZE = 2
OVERHEAD = HEAD_SIZE + CHECKSUM_SIZE  # 11 bytes around every payload
_HEADER_BYTES = HEADER.to_bytes(2, "big")
_VALID_PIDS = frozenset(int(p) for p in PacketId)


@dataclass(frozen=True, slots=True)
class Packet:
    """One checked packet."""

    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS

    @property
    def kind(self) -> PacketId:
        """The PID as an enum member."""
        return PacketId(self.pid)


def checksum(pid: int, payload: bytes) -> int:
    """Low 16 bits of PID + both length bytes + every payload byte."""
    length = len(payload) + CHECKSUM_SIZE
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode_packet(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """The wire bytes of one packet."""
    if int(pid) not in _VALID_PIDS:
        raise ValueError(f"unknown packet identifier 0x{int(pid):02x}")
    if not 1 <= len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"payload must be 1..{MAX_PAYLOAD} bytes, got {len(payload)}")
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError(f"address 0x{address:x} does not fit 32 bits")
    head = _HEAD.pack(HEADER, address, int(pid), len(payload) + CHECKSUM_SIZE)
    return head + bytes(payload) + checksum(int(pid), payload).to_bytes(2, "big")


def command(instruction: int, params: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    """A command packet: instruction code followed by its parameters."""
    return encode_packet(PacketId.COMMAND, bytes([int(instruction)]) + params, address)


class PacketDecoder:
    """Turns a byte stream into checked packets addressed to ``address``.

    Anything that is not a well-formed packet for this address is skipped one byte at a time, so
    a real packet that starts inside garbage (or inside a bogus header) is still found. A packet
    whose checksum fails is dropped and counted, never returned.
    """

    def __init__(self, address: int = DEFAULT_ADDRESS) -> None:
        self.address = address
        self._buffer = bytearray()
        self.checksum_errors = 0
        self.discarded_bytes = 0
        self.packets = 0

    def feed(self, data: bytes) -> list[Packet]:
        """Add received bytes; return every packet completed by them, in order."""
        self._buffer += data
        packets: list[Packet] = []
        buf = self._buffer
        pos = 0
        while True:
            start = buf.find(_HEADER_BYTES, pos)
            if start < 0:
                # Keep a trailing 0xEF: it may be the first half of the next header.
                keep = 1 if len(buf) > pos and buf[-1] == _HEADER_BYTES[0] else 0
                self.discarded_bytes += len(buf) - pos - keep
                pos = len(buf) - keep
                break
            self.discarded_bytes += start - pos
            pos = start
            if len(buf) - pos < HEAD_SIZE:
                break
            _, address, pid, length = _HEAD.unpack_from(buf, pos)
            if (
                address != self.address
                or pid not in _VALID_PIDS
                or not CHECKSUM_SIZE + 1 <= length <= MAX_PAYLOAD + CHECKSUM_SIZE
            ):
                pos += 1
                self.discarded_bytes += 1
                continue
            end = pos + HEAD_SIZE + length
            if len(buf) < end:
                break
            payload = bytes(buf[pos + HEAD_SIZE : end - CHECKSUM_SIZE])
            received = int.from_bytes(buf[end - CHECKSUM_SIZE : end], "big")
            if received != checksum(pid, payload):
                self.checksum_errors += 1
                self.discarded_bytes += 1
                pos += 1
                continue
            packets.append(Packet(pid, payload, address))
            self.packets += 1
            pos = end
        del buf[:pos]
        return packets

    def clear(self) -> None:
        """Forget buffered bytes (before a new command); counters are kept."""
        self.discarded_bytes += len(self._buffer)
        self._buffer.clear()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buffer)


def unpack_image(data: bytes) -> np.ndarray:
    """The module's 4-bit image (two pixels a byte, high nibble first) as a uint8 array.

    Grey levels 0..15 become 0..255 (x17), so white stays white.
    """
    if len(data) != IMAGE_BYTES:
        raise ValueError(f"an image is {IMAGE_BYTES} bytes, got {len(data)}")
    packed = np.frombuffer(data, dtype=np.uint8)
    pixels = np.empty(packed.size * 2, dtype=np.uint8)
    pixels[0::2] = packed >> 4
    pixels[1::2] = packed & 0x0F
    return (pixels * 17).reshape(IMAGE_HEIGHT, IMAGE_WIDTH)


def pack_image(image: np.ndarray) -> bytes:
    """The inverse of :func:`unpack_image`: keep the top 4 bits of each pixel."""
    if image.shape != (IMAGE_HEIGHT, IMAGE_WIDTH):
        raise ValueError(f"image must be {IMAGE_HEIGHT}x{IMAGE_WIDTH}, got {image.shape}")
    nibbles = (np.asarray(image, dtype=np.uint8) >> 4).reshape(-1)
    return ((nibbles[0::2] << 4) | nibbles[1::2]).astype(np.uint8).tobytes()


def upload_wire_bytes(packet_size: int) -> int:
    """Bytes on the line for one ``UpImage``: its ack plus the image in data packets."""
    packets = -(-IMAGE_BYTES // packet_size)
    return (OVERHEAD + 1) + IMAGE_BYTES + packets * OVERHEAD
