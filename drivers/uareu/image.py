"""Sans-IO codec of the U.are.U frame: header, scrambled blocks, and the assembled image.

A frame from the bulk endpoint (layout as documented by libfprint's ``uru4000`` driver)::

    0   4 bytes   unknown
    4   u16 LE    number of lines present in the data
    6   u8        key number (which scrambling key the device used)
    7   9 bytes   unknown
    16  15 x (flags, lines)   blocks of lines, in display order; lines == 0 ends the list
    46  18 bytes  unknown
    64  data      present lines, 384 bytes each

The 4000B/4500 scramble their image. Each block flagged ``ENCRYPTED`` is XORed with a key stream
from a 32-bit linear feedback shift register and shifted by one byte (the block's first byte is
filler, its last pixel is lost and reads 0); a block with no flags is sent plain but still
advances the key stream; ``CHANGE_KEY`` switches to the next key number; ``NOT_PRESENT`` blocks
are not in the data and repeat the lines that follow. The device hands out the key for a key
number only XORed with a seed the host chose, through two registers, so descrambling takes a
``key_for(key_number)`` callback that does that I/O; everything else here is pure.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from drivers.uareu.protocol import (
    FRAME_HEADER_BYTES,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    BlockFlag,
)

TAPS = 0x9248144D  # feedback taps at bits 0 2 3 6 10 12 19 22 25 28 31
XOR_BITS = (4, 8, 11, 14, 18, 21, 24, 29)  # key bits that form the XOR byte, low to high
MAX_BLOCKS = 15
SCRAMBLE_THRESHOLD = 5000  # libfprint's "dev2" level above which a 4000 frame is scrambled


class FrameError(ValueError):
    """The frame does not hold together (short, too many lines, blocks overflow the image)."""


@dataclass(frozen=True, slots=True)
class Block:
    """A run of lines with one handling."""

    flags: BlockFlag
    lines: int


@dataclass(frozen=True, slots=True)
class RawFrame:
    """A parsed frame; ``rows`` holds the present lines, zero-padded to 290 rows."""

    num_lines: int
    key_number: int
    blocks: tuple[Block, ...]
    rows: np.ndarray


def update_key(key: int) -> int:
    """One step of the key register (reference form, used by tests and short runs)."""
    feedback = (key & TAPS).bit_count() & 1
    return (feedback << 31) | (key >> 1)


@lru_cache(maxsize=1)
def _sixteen_step_tables() -> tuple[tuple[int, ...], ...]:
    # The register is linear over GF(2), so the 16 bits it feeds back in 16 steps are the XOR of
    # the contributions of each key bit; one table per key byte turns 16 steps into 4 lookups.
    basis = []
    for bit in range(32):
        key, fed = 1 << bit, 0
        for step in range(16):
            feedback = (key & TAPS).bit_count() & 1
            fed |= feedback << step
            key = (feedback << 31) | (key >> 1)
        basis.append(fed)
    tables = []
    for byte in range(4):
        table = []
        for value in range(256):
            acc = 0
            for bit in range(8):
                if value >> bit & 1:
                    acc ^= basis[8 * byte + bit]
            table.append(acc)
        tables.append(tuple(table))
    return tuple(tables)


def _register_bits(key: int, steps: int) -> np.ndarray:
    """Bit ``j`` of the register after ``t`` steps is element ``t + j`` of the returned array."""
    t0, t1, t2, t3 = _sixteen_step_tables()
    chunks = np.empty(-(-steps // 16), dtype="<u2")
    k = key
    for i in range(chunks.size):
        fed = t0[k & 0xFF] ^ t1[(k >> 8) & 0xFF] ^ t2[(k >> 16) & 0xFF] ^ t3[k >> 24]
        chunks[i] = fed
        k = (k >> 16) | (fed << 16)
    start = np.unpackbits(np.frombuffer(key.to_bytes(4, "little"), np.uint8), bitorder="little")
    fed_bits = np.unpackbits(chunks.view(np.uint8), bitorder="little")
    return np.concatenate([start, fed_bits])


def keystream(key: int, count: int) -> tuple[np.ndarray, int]:
    """The XOR bytes of ``count`` register steps from ``key``, and the key after them."""
    if count <= 0:
        return np.zeros(0, dtype=np.uint8), key
    bits = _register_bits(key, count)
    stream = np.zeros(count, dtype=np.uint8)
    for out_bit, key_bit in enumerate(XOR_BITS):
        stream |= bits[key_bit : key_bit + count] << out_bit
    next_key = int.from_bytes(np.packbits(bits[count : count + 32], bitorder="little"), "little")
    return stream, next_key


def advance_key(key: int, count: int) -> int:
    """The key after ``count`` steps (a plain block still moves the key stream on)."""
    return keystream(key, count)[1]


# --- frame layout ----------------------------------------------------------------------------

_HEAD = struct.Struct("<4sHB9s")


def parse_frame(buf: bytes) -> RawFrame:
    """Check and split a bulk transfer into header fields and present lines."""
    if len(buf) < FRAME_HEADER_BYTES:
        raise FrameError(f"frame header incomplete: {len(buf)} of {FRAME_HEADER_BYTES} bytes")
    _, num_lines, key_number, _ = _HEAD.unpack_from(buf)
    if num_lines >= IMAGE_HEIGHT:
        raise FrameError(f"frame claims {num_lines} lines (at most {IMAGE_HEIGHT - 1})")
    needed = FRAME_HEADER_BYTES + num_lines * IMAGE_WIDTH
    if len(buf) < needed:
        raise FrameError(f"frame short: {len(buf)} of {needed} bytes")
    blocks = []
    for i in range(MAX_BLOCKS):
        flags, lines = buf[16 + 2 * i], buf[17 + 2 * i]
        if lines == 0:
            break
        blocks.append(Block(BlockFlag(flags), lines))
    if sum(b.lines for b in blocks) > IMAGE_HEIGHT:
        raise FrameError(f"blocks cover more than {IMAGE_HEIGHT} lines")
    rows = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), dtype=np.uint8)
    rows[:num_lines] = np.frombuffer(buf, np.uint8, num_lines * IMAGE_WIDTH,
                                     FRAME_HEADER_BYTES).reshape(num_lines, IMAGE_WIDTH)
    return RawFrame(num_lines, key_number, tuple(blocks), rows)


def encode_frame(key_number: int, blocks: Iterable[Block], rows: np.ndarray) -> bytes:
    """A frame as the device sends it (the emulator's side); ``rows`` are the present lines."""
    blocks = list(blocks)
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"at most {MAX_BLOCKS} blocks")
    head = bytearray(FRAME_HEADER_BYTES)
    _HEAD.pack_into(head, 0, b"\0" * 4, rows.shape[0], key_number & 0xFF, b"\0" * 9)
    for i, block in enumerate(blocks):
        head[16 + 2 * i] = int(block.flags)
        head[17 + 2 * i] = block.lines
    return bytes(head) + np.ascontiguousarray(rows, dtype=np.uint8).tobytes()


def _walk(num_lines: int, blocks: tuple[Block, ...]) -> Iterable[tuple[int, Block, int]]:
    """(index, block, first data row) for each block until the present lines run out."""
    row = 0
    for index, block in enumerate(blocks):
        if row >= num_lines:
            return
        yield index, block, row
        if not block.flags & BlockFlag.NOT_PRESENT:
            row += block.lines


def descramble(frame: RawFrame, key_for: Callable[[int], int]) -> np.ndarray:
    """The present lines with the scrambling undone; ``key_for(n)`` fetches key number ``n``."""
    data = frame.rows.reshape(-1).copy()
    key_number = frame.key_number
    key = key_for(key_number)
    for _, block, row in _walk(frame.num_lines, frame.blocks):
        if block.flags & BlockFlag.CHANGE_KEY:
            key_number = (key_number + 1) & 0xFF
            key = key_for(key_number)
        start, count = row * IMAGE_WIDTH, block.lines * IMAGE_WIDTH
        handling = block.flags & (BlockFlag.NO_KEY_UPDATE | BlockFlag.ENCRYPTED)
        if handling == BlockFlag.ENCRYPTED:
            stream, key = keystream(key, count)
            segment = data[start : start + count]
            segment[:-1] = segment[1:] ^ stream[:-1]
            segment[-1] = 0
        elif not handling:
            key = advance_key(key, count)
    return data.reshape(IMAGE_HEIGHT, IMAGE_WIDTH)


def scramble(
    rows: np.ndarray,
    key_number: int,
    blocks: tuple[Block, ...],
    key_of: Callable[[int], int],
    filler: Callable[[], int],
) -> np.ndarray:
    """The device side of :func:`descramble`: scramble present ``rows`` block by block."""
    padded = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), dtype=np.uint8)
    padded[: rows.shape[0]] = rows
    data = padded.reshape(-1)
    key = key_of(key_number)
    for _, block, row in _walk(rows.shape[0], blocks):
        if block.flags & BlockFlag.CHANGE_KEY:
            key_number = (key_number + 1) & 0xFF
            key = key_of(key_number)
        start, count = row * IMAGE_WIDTH, block.lines * IMAGE_WIDTH
        handling = block.flags & (BlockFlag.NO_KEY_UPDATE | BlockFlag.ENCRYPTED)
        if handling == BlockFlag.ENCRYPTED:
            stream, key = keystream(key, count)
            plain = data[start : start + count].copy()
            data[start + 1 : start + count] = plain[:-1] ^ stream[:-1]
            data[start] = filler() & 0xFF
        elif not handling:
            key = advance_key(key, count)
    return padded[: rows.shape[0]]


def assemble(frame: RawFrame, rows: np.ndarray) -> np.ndarray:
    """Lay the present ``rows`` out in display order; absent blocks repeat the next lines."""
    image = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), dtype=np.uint8)
    line = 0
    for _, block, row in _walk(frame.num_lines, frame.blocks):
        image[line : line + block.lines] = rows[row : row + block.lines]
        line += block.lines
    return image


def looks_scrambled(frame: RawFrame) -> bool:
    """Whether a 4000 frame is scrambled (the 4000B/4500 always are).

    libfprint's test: the sum of the first two lines of a plain frame varies little along the
    line (dev2 under :data:`SCRAMBLE_THRESHOLD`). A finger that touches the top edge passes that
    test, so a frame over the threshold must also have unrelated neighbouring lines, as
    scrambled lines are; ridges make neighbouring lines alike.
    """
    if frame.num_lines < 2:
        return False
    pair = frame.rows[0].astype(np.int64) + frame.rows[1].astype(np.int64)
    mean = int(pair.sum()) // IMAGE_WIDTH
    dev2 = int(((pair - mean) ** 2).sum()) // IMAGE_WIDTH
    if dev2 < SCRAMBLE_THRESHOLD:
        return False
    lines = frame.rows[: min(frame.num_lines, 8)].astype(np.float64)
    lines -= lines.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(lines, axis=1)
    alike = (lines[:-1] * lines[1:]).sum(axis=1) / np.maximum(norms[:-1] * norms[1:], 1e-9)
    return float(np.median(alike)) < 0.5
