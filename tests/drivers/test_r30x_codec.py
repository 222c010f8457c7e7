"""The 0xEF01 packet codec and the 4-bit image format, on known bytes and on arbitrary streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.r30x.codec import (
    Packet,
    PacketDecoder,
    command,
    encode_packet,
    pack_image,
    unpack_image,
    upload_wire_bytes,
)
from drivers.r30x.protocol import (
    IMAGE_BYTES,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    Instruction,
    PacketId,
    SystemParameters,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_command_packets_match_the_manual() -> None:
    # GenImg and TempleteNum as printed in the Grow manuals: sum = PID + length + instruction.
    assert command(Instruction.GenImg) == bytes.fromhex("ef01ffffffff010003010005")
    assert command(Instruction.TempleteNum) == bytes.fromhex("ef01ffffffff0100031d0021")
    header = "ef01" "ffffffff"
    assert command(Instruction.VfyPwd, bytes(4)) == bytes.fromhex(
        header + "01" "0007" "13" "00000000" "001b"
    )


def test_read_sys_para_answer_decodes() -> None:
    # An R30x answer to ReadSysPara: library 200, level 3, packet size code 2, N = 6.
    wire = bytes.fromhex(
        "ef01" "ffffffff" "07" "0013" "00"
        "0000" "0000" "00c8" "0003" "ffffffff" "0002" "0006"
        "04e9"
    )
    (packet,) = PacketDecoder().feed(wire)
    assert packet.kind is PacketId.ACK and packet.payload[0] == 0
    params = SystemParameters.decode(packet.payload[1:])
    assert params.library_size == 200
    assert params.packet_size == 128
    assert params.baudrate == 57600
    assert params.encode() == packet.payload[1:]


def test_a_bad_checksum_is_dropped_and_counted() -> None:
    good = encode_packet(PacketId.ACK, b"\x00")
    bad = bytearray(good)
    bad[-1] ^= 0x01
    decoder = PacketDecoder()
    assert decoder.feed(bytes(bad)) == []
    assert decoder.checksum_errors == 1
    assert decoder.feed(good) == [Packet(PacketId.ACK, b"\x00")]


def test_packets_for_another_address_are_ignored() -> None:
    decoder = PacketDecoder(address=0x12345678)
    assert decoder.feed(encode_packet(PacketId.ACK, b"\x00")) == []
    assert decoder.feed(encode_packet(PacketId.ACK, b"\x00", 0x12345678))[0].address == 0x12345678


@pytest.mark.parametrize("payload", [b"", bytes(257)])
def test_encode_refuses_payloads_the_protocol_cannot_carry(payload: bytes) -> None:
    with pytest.raises(ValueError):
        encode_packet(PacketId.DATA, payload)


def test_image_nibbles_are_high_first_and_scaled_to_8_bits() -> None:
    data = bytes([0xF0]) + bytes(IMAGE_BYTES - 1)
    image = unpack_image(data)
    assert image.shape == (IMAGE_HEIGHT, IMAGE_WIDTH)
    assert image[0, 0] == 255 and image[0, 1] == 0


def test_image_round_trip_keeps_the_top_four_bits() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(IMAGE_HEIGHT, IMAGE_WIDTH), dtype=np.uint8)
    assert np.array_equal(unpack_image(pack_image(image)), (image >> 4) * 17)


def test_a_truncated_image_is_refused() -> None:
    with pytest.raises(ValueError):
        unpack_image(bytes(IMAGE_BYTES - 1))


def test_upload_wire_bytes_counts_every_packet() -> None:
    # 36864 image bytes in 288 packets of 128, 11 bytes around each, plus the 12-byte ack.
    assert upload_wire_bytes(128) == 12 + 36864 + 288 * 11


packets = st.builds(
    encode_packet,
    st.sampled_from(list(PacketId)),
    st.binary(min_size=1, max_size=256),
)


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_and_only_checked_packets_come_out(stream: bytes) -> None:
    for packet in PacketDecoder().feed(stream):
        # Every packet returned is a well-formed, checksummed packet present in the input.
        assert encode_packet(packet.pid, packet.payload, packet.address) in stream


@FAST
@given(st.binary(max_size=600), st.lists(packets, min_size=1, max_size=4))
def test_the_decoder_recovers_on_the_next_valid_packet(garbage: bytes, valid: list[bytes]) -> None:
    # A header fragment in the garbage may claim up to 267 bytes; the filler completes it so the
    # decoder can reject it and resynchronise.
    decoder = PacketDecoder()
    out = decoder.feed(garbage + b"".join(valid) + bytes(300))
    tail = [encode_packet(p.pid, p.payload) for p in out[-len(valid):]]
    assert tail == valid


@FAST
@given(st.lists(packets, min_size=1, max_size=5), st.data())
def test_chunking_does_not_change_what_is_decoded(valid: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(valid)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = PacketDecoder()
    out: list[Packet] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[start:end])
    assert [encode_packet(p.pid, p.payload) for p in out] == valid
    assert decoder.buffered == 0
