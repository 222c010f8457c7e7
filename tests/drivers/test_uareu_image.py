"""The U.are.U frame codec: key register, scrambling, header checks, assembly."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.uareu.image import (
    TAPS,
    Block,
    FrameError,
    RawFrame,
    advance_key,
    assemble,
    descramble,
    encode_frame,
    keystream,
    looks_scrambled,
    parse_frame,
    scramble,
)
from drivers.uareu.protocol import FRAME_HEADER_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, BlockFlag

E, N, K = BlockFlag.ENCRYPTED, BlockFlag.NOT_PRESENT, BlockFlag.CHANGE_KEY
LAYOUT = (Block(E, 10), Block(K | E, 10), Block(BlockFlag(0), 5),
          Block(N | BlockFlag.NO_KEY_UPDATE, 2), Block(E, 8))


def reference_keystream(key: int, count: int) -> tuple[list[int], int]:
    """libfprint's update_key/do_decode, one step at a time, written from its description."""
    out = []
    for _ in range(count):
        xor = 0
        for position, bit in enumerate((4, 8, 11, 14, 18, 21, 24, 29)):
            xor |= ((key >> bit) & 1) << position
        out.append(xor)
        feedback = bin(key & TAPS).count("1") & 1
        key = (feedback << 31) | (key >> 1)
    return out, key


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 200))
def test_fast_keystream_equals_the_step_by_step_register(key: int, count: int) -> None:
    stream, after = keystream(key, count)
    expected, expected_after = reference_keystream(key, count)
    assert stream.tolist() == expected
    assert after == expected_after == advance_key(key, count)


def _keys(number: int) -> int:
    return (0x9E3779B1 * (number + 1)) & 0xFFFFFFFF


def test_scramble_then_descramble_gives_the_lines_back() -> None:
    rng = np.random.default_rng(5)
    present = sum(b.lines for b in LAYOUT if not b.flags & N)
    rows = rng.integers(0, 256, size=(present, IMAGE_WIDTH), dtype=np.uint8)
    fill = random.Random(1)
    sent = scramble(rows, 7, LAYOUT, _keys, lambda: fill.randrange(256))
    frame = parse_frame(encode_frame(7, LAYOUT, sent))
    asked: list[int] = []

    def key_for(number: int) -> int:
        asked.append(number)
        return _keys(number)

    back = descramble(frame, key_for)[:present]
    assert asked == [7, 8]  # the CHANGE_KEY block moved to the next key number
    plain = back == rows
    # Scrambling shifts an encrypted block by one byte: its last pixel is lost (reads 0).
    lost = (~plain).nonzero()
    assert len(lost[0]) <= 3
    assert all(back[r, c] == 0 for r, c in zip(*lost, strict=True))
    assert not np.array_equal(sent, rows)


def test_assembly_repeats_the_lines_after_an_absent_block() -> None:
    present = sum(b.lines for b in LAYOUT if not b.flags & N)
    rows = np.repeat(np.arange(present, dtype=np.uint8)[:, None], IMAGE_WIDTH, axis=1)
    frame = RawFrame(present, 0, LAYOUT, np.vstack([rows, np.zeros(
        (IMAGE_HEIGHT - present, IMAGE_WIDTH), np.uint8)]))
    image = assemble(frame, frame.rows)
    column = image[:, 0].tolist()
    assert column[:25] == list(range(25))
    assert column[25:27] == [25, 26]  # the absent block shows the next two lines
    assert column[27:35] == list(range(25, 33))


def test_a_short_frame_is_refused() -> None:
    frame = encode_frame(0, LAYOUT, np.zeros((33, IMAGE_WIDTH), np.uint8))
    with pytest.raises(FrameError, match="short"):
        parse_frame(frame[:-1])
    with pytest.raises(FrameError, match="header"):
        parse_frame(frame[: FRAME_HEADER_BYTES - 1])


def test_a_frame_claiming_too_many_lines_is_refused() -> None:
    head = bytearray(encode_frame(0, LAYOUT, np.zeros((1, IMAGE_WIDTH), np.uint8)))
    head[4:6] = (IMAGE_HEIGHT).to_bytes(2, "little")
    with pytest.raises(FrameError, match="lines"):
        parse_frame(bytes(head) + bytes(IMAGE_HEIGHT * IMAGE_WIDTH))


def test_blocks_overflowing_the_image_are_refused() -> None:
    blocks = [Block(E, 200), Block(E, 100)]
    with pytest.raises(FrameError, match="blocks"):
        parse_frame(encode_frame(0, blocks, np.zeros((10, IMAGE_WIDTH), np.uint8)))


def _frame_of(rows: np.ndarray) -> RawFrame:
    padded = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), np.uint8)
    padded[: rows.shape[0]] = rows
    return RawFrame(rows.shape[0], 0, (Block(E, rows.shape[0]),), padded)


def test_scrambled_lines_are_recognised_and_plain_ones_are_not() -> None:
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 256, size=(20, IMAGE_WIDTH), dtype=np.uint8)
    background = np.clip(20 + rng.normal(0, 3, (20, IMAGE_WIDTH)), 0, 255).astype(np.uint8)
    # Ridges crossing the top edge: high variance along the line, yet neighbouring lines alike.
    x = np.arange(IMAGE_WIDTH)
    ridges = np.array([128 + 120 * np.sin(2 * np.pi * (x + y * 0.3) / 9) for y in range(20)])
    assert looks_scrambled(_frame_of(noise))
    assert not looks_scrambled(_frame_of(background))
    assert not looks_scrambled(_frame_of(ridges.astype(np.uint8)))
