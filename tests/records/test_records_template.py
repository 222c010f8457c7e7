"""ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 minutiae templates: layout and round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain import Minutia, MinutiaType
from appliance.records.errors import TemplateError
from appliance.records.template import (
    MinutiaeTemplate,
    TemplateFormat,
    TemplateView,
    decode_ansi378,
    decode_iso19794_2,
    encode_ansi378,
    encode_iso19794_2,
    quantize,
    write_template,
)

ISO, ANSI = TemplateFormat.ISO_19794_2_2005, TemplateFormat.ANSI_378_2004
CODECS = {ISO: (encode_iso19794_2, decode_iso19794_2), ANSI: (encode_ansi378, decode_ansi378)}
VIEW = dict(width=400, height=500, ppi=500, position=7, impression_type=1, finger_quality=77)

MINUTIAE = [
    Minutia(10.4, 20.6, math.radians(90), MinutiaType.ENDING, 80),
    Minutia(399.0, 499.0, math.radians(359.5), MinutiaType.BIFURCATION, 0),
    Minutia(0.0, 0.0, 0.0, MinutiaType.OTHER, 100),
]


def test_iso_header_and_first_minutia_bytes_follow_the_2005_layout():
    data = encode_iso19794_2(MINUTIAE, **VIEW)
    assert data[:8] == b"FMR\x00 20\x00"
    assert struct.unpack(">I", data[8:12])[0] == len(data) == 24 + 4 + 3 * 6 + 2
    assert struct.unpack(">HHHHHBB", data[12:24]) == (0, 400, 500, 197, 197, 1, 0)
    assert data[24:28] == bytes([7, 0x01, 77, 3])  # position, view 0 | rolled, quality, count
    first = struct.unpack(">HHBB", data[28:34])
    assert first == ((0b01 << 14) | 10, 21, 64, 80)  # ending, x 10, y 21, 90 deg = 64 steps


def test_ansi_header_has_short_length_and_product_id_and_two_degree_angles():
    data = encode_ansi378(MINUTIAE, **VIEW)
    assert data[:8] == b"FMR\x00 20\x00"
    assert struct.unpack(">H", data[8:10])[0] == len(data) == 26 + 4 + 3 * 6 + 2
    assert struct.unpack(">HHHHHHHBB", data[10:26]) == (0, 0, 0, 400, 500, 197, 197, 1, 0)
    first = struct.unpack(">HHBB", data[30:36])
    assert first[2] == 45  # 90 degrees in 2-degree units
    second = struct.unpack(">HHBB", data[36:42])
    assert second[0] >> 14 == 0b10 and second[2] == 0  # bifurcation; 359.5 deg rounds to 0


@pytest.mark.parametrize("fmt", [ISO, ANSI])
def test_decode_gives_back_the_quantised_minutiae_and_header(fmt):
    encode, decode = CODECS[fmt]
    template = decode(encode(MINUTIAE, **VIEW))
    assert (template.width, template.height, template.ppi) == (400, 500, 500)
    (view,) = template.views
    assert (view.position, view.impression_type, view.finger_quality) == (7, 1, 77)
    assert list(view.minutiae) == quantize(MINUTIAE, fmt)
    assert write_template(template) == encode(MINUTIAE, **VIEW)


@pytest.mark.parametrize("fmt", [ISO, ANSI])
def test_angles_are_quantised_to_the_format_unit(fmt):
    step = fmt.angle_unit_deg
    got = quantize([Minutia(1, 1, math.radians(3 * step + 0.4 * step), MinutiaType.ENDING, 1)],
                   fmt)
    assert got[0].angle_deg == pytest.approx(3 * step)


def test_multi_view_record_with_extended_data_round_trips_byte_for_byte():
    ridge_counts = struct.pack(">HH", 0x0001, 4 + 4) + bytes([0, 1, 2, 5])
    template = MinutiaeTemplate(
        format=ANSI, width=600, height=600, x_resolution=197, y_resolution=197,
        product_owner=0x001B, product_type=0x0201, capture_equipment=0x1ABC,
        views=(TemplateView(2, 0, 60, tuple(quantize(MINUTIAE, ANSI))),
               TemplateView(2, 0, 61, (), view_number=1, extended_data=ridge_counts)),
    )
    data = write_template(template)
    assert decode_ansi378(data) == template


def test_ansi_long_record_uses_the_six_byte_length():
    view = TemplateView(1, 0, 50, tuple(quantize(
        [Minutia(i % 500, i // 500, 0.0, MinutiaType.ENDING, 50) for i in range(255)], ANSI)))
    template = MinutiaeTemplate(ANSI, 500, 500, 197, 197, views=(view,) * 45)
    data = write_template(template)
    assert len(data) > 0xFFFF
    assert data[8:10] == b"\x00\x00" and struct.unpack(">I", data[10:14])[0] == len(data)
    assert decode_ansi378(data) == template


@pytest.mark.parametrize(("change", "message"), [
    (dict(position=13), "finger position"),
    (dict(impression_type=5), "impression type"),
    (dict(finger_quality=101), "finger quality"),
    (dict(width=5), "outside"),
])
def test_encoder_refuses_values_the_format_cannot_hold(change, message):
    with pytest.raises(TemplateError, match=message):
        encode_iso19794_2(MINUTIAE, **{**VIEW, **change})


def test_encoder_refuses_more_than_255_minutiae():
    many = [Minutia(1, 1, 0, MinutiaType.ENDING, 1)] * 256
    with pytest.raises(TemplateError, match="number of minutiae"):
        encode_ansi378(many, **VIEW)


@pytest.mark.parametrize(("offset", "value", "message"), [
    (0, 0x46 ^ 0xFF, "format identifier"),
    (5, 0x31, "version"),
    (11, 0x00, "record length"),
    (24, 11, "finger position"),
    (25, 0x05, "impression type"),
    (28, 0xC0, "reserved type bits"),
])
def test_decoder_names_the_defect(offset, value, message):
    data = bytearray(encode_iso19794_2(MINUTIAE, **VIEW))
    data[offset] = value
    with pytest.raises(TemplateError, match=message):
        decode_iso19794_2(bytes(data))


def test_ansi_decoder_refuses_an_angle_beyond_179():
    data = bytearray(encode_ansi378(MINUTIAE, **VIEW))
    data[34] = 200  # angle byte of the first minutia
    with pytest.raises(TemplateError, match="angle 200"):
        decode_ansi378(bytes(data))


def test_iso_record_is_not_read_as_ansi():
    with pytest.raises(TemplateError):
        decode_ansi378(encode_iso19794_2(MINUTIAE, **VIEW))


minutia_strategy = st.builds(
    Minutia,
    x=st.floats(0, 399.4), y=st.floats(0, 499.4),
    angle=st.floats(-20, 20, allow_nan=False),
    kind=st.sampled_from(list(MinutiaType)), quality=st.integers(0, 100),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(minutia_strategy, max_size=60), st.sampled_from([ISO, ANSI]))
def test_any_minutiae_round_trip_exactly_once_quantised(minutiae, fmt):
    encode, decode = CODECS[fmt]
    data = encode(minutiae, **VIEW)
    assert list(decode(data).views[0].minutiae) == quantize(minutiae, fmt)
    assert encode(quantize(minutiae, fmt), **VIEW) == data
