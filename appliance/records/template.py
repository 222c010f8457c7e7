"""Finger minutiae templates: ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 record formats.

Receivers that match prints (AFIS, access control, the central service) read minutiae in one of
these two interchange formats, so the station writes both from the same ``Minutia`` list. They
share one byte layout except for the record header and the unit of the minutia angle. All
integers are big-endian.

Record header, ISO/IEC 19794-2:2005 (24 bytes)::

    0   4  format identifier  46 4D 52 00 ("FMR" and a NUL)
    4   4  version            20 32 30 00 (" 20" and a NUL)
    8   4  record length      whole record, header included
    12  2  capture equipment  4 bits compliance, 12 bits equipment id
    14  2  image width        pixels
    16  2  image height       pixels
    18  2  x resolution       pixels per centimetre (197 for 500 ppi)
    20  2  y resolution       pixels per centimetre
    22  1  number of finger views
    23  1  reserved (0)

Record header, ANSI INCITS 378-2004 (26 bytes, 30 when the record exceeds 65535 bytes)::

    0   8  format identifier and version, as ISO
    8   2  record length      or 0x0000 followed by a 4-byte length (then every offset below +4)
    10  4  CBEFF product id   2 bytes owner, 2 bytes type
    14  2  capture equipment  4 bits compliance, 12 bits equipment id
    16  2  image width, 18 image height, 20 x resolution, 22 y resolution (as ISO)
    24  1  number of finger views
    25  1  reserved (0)

Finger view (both formats), repeated "number of finger views" times::

    0   1  finger position    0..10 (ANSI/NIST-ITL Table 8; plain multi-finger codes not allowed)
    1   1  view number (high 4 bits) | impression type (low 4 bits: 0 plain live-scan,
           1 rolled live-scan, 2 plain non-live, 3 rolled non-live, 8 swipe)
    2   1  finger quality     0..100
    3   1  number of minutiae N
    4   6N minutiae:
           2  type (high 2 bits: 01 ridge ending, 10 bifurcation, 00 other) | x (14 bits)
           2  reserved (2 bits, 0) | y (14 bits); origin top-left, y grows downwards
           1  angle, counter-clockwise from +x as on screen: ISO units of 360/256 = 1.40625
              degrees (0..255), ANSI units of 2 degrees (0..179)
           1  minutia quality  0..100 (0: not reported)
    .   2  extended data block length L (0: none), then L bytes of blocks
           (2 bytes type, 2 bytes length including this 4-byte header, data)

The writer emits no extended data; the reader keeps it as raw bytes so that a foreign template
is written back byte for byte. A ``Minutia`` round-trips exactly once quantised: pixel
coordinates become integers and the angle a whole number of the format's angle units.
"""

from __future__ import annotations

import enum
import math
import numbers
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.domain import Minutia, MinutiaType
from appliance.records.errors import TemplateError

FORMAT_IDENTIFIER = b"FMR\x00"
VERSION_2005 = b" 20\x00"
ISO_HEADER_LENGTH = 24
ANSI_SHORT_HEADER_LENGTH = 26
ANSI_LONG_HEADER_LENGTH = 30
VIEW_HEADER_LENGTH = 4
MINUTIA_LENGTH = 6
MAX_COORDINATE = 0x3FFF
MAX_MINUTIAE = 255
#: Impression types allowed in a finger view (ISO/IEC 19794-2:2005 Table 2, INCITS 378 6.5.1.3).
IMPRESSION_TYPES = frozenset({0, 1, 2, 3, 8})
#: INCITS M1's CBEFF format owner and the format type of INCITS 378 finger minutiae.
CBEFF_OWNER_INCITS_M1 = 0x001B
CBEFF_TYPE_INCITS_378 = 0x0201


class TemplateFormat(enum.Enum):
    """The two interchange formats, with the size of one angle unit in degrees."""

    ISO_19794_2_2005 = "ISO/IEC 19794-2:2005"
    ANSI_378_2004 = "ANSI INCITS 378-2004"

    @property
    def angle_unit_deg(self) -> float:
        """Degrees per stored angle step."""
        return 360.0 / 256.0 if self is TemplateFormat.ISO_19794_2_2005 else 2.0

    @property
    def angle_steps(self) -> int:
        """Number of distinct angle values (256 for ISO, 180 for ANSI)."""
        return 256 if self is TemplateFormat.ISO_19794_2_2005 else 180


class MinutiaTypeCode(enum.IntEnum):
    """Minutia type bits, the same in both formats."""

    OTHER = 0b00
    RIDGE_ENDING = 0b01
    BIFURCATION = 0b10


_TYPE_CODE = {
    MinutiaType.OTHER: MinutiaTypeCode.OTHER,
    MinutiaType.ENDING: MinutiaTypeCode.RIDGE_ENDING,
    MinutiaType.BIFURCATION: MinutiaTypeCode.BIFURCATION,
}
_TYPE_KIND = {code: kind for kind, code in _TYPE_CODE.items()}


@dataclass(frozen=True, slots=True)
class TemplateView:
    """One finger view: where the finger was, how it was taken, and its minutiae."""

    position: int
    impression_type: int
    finger_quality: int
    minutiae: tuple[Minutia, ...]
    view_number: int = 0
    extended_data: bytes = b""


@dataclass(frozen=True, slots=True)
class MinutiaeTemplate:
    """A whole finger minutiae record: the header and its finger views."""

    format: TemplateFormat
    width: int
    height: int
    x_resolution: int
    y_resolution: int
    views: tuple[TemplateView, ...]
    capture_equipment: int = 0
    product_owner: int = 0
    product_type: int = 0

    @property
    def ppi(self) -> int:
        """Horizontal resolution in pixels per inch (197 px/cm reads as 500 ppi)."""
        return round(self.x_resolution * 2.54)


def ppi_to_ppcm(ppi: int) -> int:
    """Pixels per inch to the whole pixels per centimetre the formats store (500 -> 197)."""
    return round(ppi / 2.54)


def quantize(minutiae: Iterable[Minutia], template_format: TemplateFormat) -> list[Minutia]:
    """The minutiae exactly as a write and a read in ``template_format`` give them back."""
    return [minutia_from_units(*minutia_units(m, template_format), template_format)
            for m in minutiae]


def encode_iso19794_2(
    minutiae: Sequence[Minutia],
    *,
    width: int,
    height: int,
    ppi: int,
    position: int,
    impression_type: int,
    finger_quality: int,
    view_number: int = 0,
) -> bytes:
    """One finger view as an ISO/IEC 19794-2:2005 record (layout in the module docstring)."""
    return write_template(
        _single_view(TemplateFormat.ISO_19794_2_2005, minutiae, width, height, ppi, position,
                     impression_type, finger_quality, view_number)
    )


def encode_ansi378(
    minutiae: Sequence[Minutia],
    *,
    width: int,
    height: int,
    ppi: int,
    position: int,
    impression_type: int,
    finger_quality: int,
    view_number: int = 0,
) -> bytes:
    """One finger view as an ANSI INCITS 378-2004 record (layout in the module docstring)."""
    return write_template(
        _single_view(TemplateFormat.ANSI_378_2004, minutiae, width, height, ppi, position,
                     impression_type, finger_quality, view_number)
    )


def decode_iso19794_2(data: bytes) -> MinutiaeTemplate:
    """Read an ISO/IEC 19794-2:2005 record; raises ``TemplateError`` on any defect."""
    return _read(bytes(data), TemplateFormat.ISO_19794_2_2005)


def decode_ansi378(data: bytes) -> MinutiaeTemplate:
    """Read an ANSI INCITS 378-2004 record; raises ``TemplateError`` on any defect."""
    return _read(bytes(data), TemplateFormat.ANSI_378_2004)


def write_template(template: MinutiaeTemplate) -> bytes:
    """Serialise a whole record, any number of views, in its own format."""
    fmt = template.format
    _check_range("image width", template.width, 0, 0xFFFF)
    _check_range("image height", template.height, 0, 0xFFFF)
    _check_range("x resolution", template.x_resolution, 0, 0xFFFF)
    _check_range("y resolution", template.y_resolution, 0, 0xFFFF)
    _check_range("capture equipment", template.capture_equipment, 0, 0xFFFF)
    _check_range("number of finger views", len(template.views), 0, 255)
    body = b"".join(_write_view(view, template, i) for i, view in enumerate(template.views, 1))
    tail = struct.pack(
        ">HHHHHBB", template.capture_equipment, template.width, template.height,
        template.x_resolution, template.y_resolution, len(template.views), 0,
    )
    if fmt is TemplateFormat.ISO_19794_2_2005:
        length = ISO_HEADER_LENGTH + len(body)
        return FORMAT_IDENTIFIER + VERSION_2005 + struct.pack(">I", length) + tail + body
    _check_range("CBEFF product owner", template.product_owner, 0, 0xFFFF)
    _check_range("CBEFF product type", template.product_type, 0, 0xFFFF)
    product = struct.pack(">HH", template.product_owner, template.product_type)
    length = ANSI_SHORT_HEADER_LENGTH + len(body)
    if length <= 0xFFFF:
        size = struct.pack(">H", length)
    else:
        length = ANSI_LONG_HEADER_LENGTH + len(body)
        size = struct.pack(">HI", 0, length)
    return FORMAT_IDENTIFIER + VERSION_2005 + size + product + tail + body


# -- writing ----------------------------------------------------------------------------------


def _single_view(
    fmt: TemplateFormat,
    minutiae: Sequence[Minutia],
    width: int,
    height: int,
    ppi: int,
    position: int,
    impression_type: int,
    finger_quality: int,
    view_number: int,
) -> MinutiaeTemplate:
    if not isinstance(ppi, numbers.Integral) or ppi <= 0:
        raise TemplateError(f"resolution must be a positive number of pixels per inch, not {ppi}")
    ppi = int(ppi)
    resolution = ppi_to_ppcm(ppi)
    view = TemplateView(
        position=int(position),
        impression_type=int(impression_type),
        finger_quality=int(finger_quality),
        minutiae=tuple(minutiae),
        view_number=view_number,
    )
    return MinutiaeTemplate(
        format=fmt, width=width, height=height, x_resolution=resolution,
        y_resolution=resolution, views=(view,),
    )


def _write_view(view: TemplateView, template: MinutiaeTemplate, index: int) -> bytes:
    where = f"finger view {index}"
    _check_range(f"{where}: finger position", view.position, 0, 10)
    _check_range(f"{where}: view number", view.view_number, 0, 15)
    if view.impression_type not in IMPRESSION_TYPES:
        raise TemplateError(f"{where}: impression type {view.impression_type} is not one of "
                            f"{sorted(IMPRESSION_TYPES)}")
    _check_range(f"{where}: finger quality", view.finger_quality, 0, 100)
    _check_range(f"{where}: number of minutiae", len(view.minutiae), 0, MAX_MINUTIAE)
    out = bytearray(struct.pack(
        ">BBBB", view.position, (view.view_number << 4) | view.impression_type,
        view.finger_quality, len(view.minutiae),
    ))
    for n, minutia in enumerate(view.minutiae, 1):
        code, x, y, angle, quality = minutia_units(minutia, template.format)
        if not (0 <= x < max(template.width, 1) and 0 <= y < max(template.height, 1)):
            raise TemplateError(f"{where}: minutia {n} at ({x}, {y}) lies outside the "
                                f"{template.width}x{template.height} image")
        _check_range(f"{where}: minutia {n} quality", quality, 0, 100)
        out += struct.pack(">HHBB", (code << 14) | x, y, angle, quality)
    _check_range(f"{where}: extended data length", len(view.extended_data), 0, 0xFFFF)
    out += struct.pack(">H", len(view.extended_data)) + view.extended_data
    return bytes(out)


def minutia_units(m: Minutia, fmt: TemplateFormat) -> tuple[int, int, int, int, int]:
    """(type code, x, y, angle units, quality) of one minutia in ``fmt``."""
    if not all(math.isfinite(v) for v in (m.x, m.y, m.angle)):
        raise TemplateError("minutia with a non-finite coordinate or angle")
    try:
        code = _TYPE_CODE[MinutiaType(m.kind)]
    except ValueError as exc:
        raise TemplateError(f"unknown minutia kind {m.kind!r}") from exc
    x, y = round(m.x), round(m.y)
    if not (0 <= x <= MAX_COORDINATE and 0 <= y <= MAX_COORDINATE):
        raise TemplateError(f"minutia at ({x}, {y}) does not fit the 14-bit coordinates")
    angle = round((math.degrees(m.angle) % 360.0) / fmt.angle_unit_deg) % fmt.angle_steps
    return int(code), x, y, angle, int(m.quality)


def minutia_from_units(
    code: int, x: int, y: int, angle: int, quality: int, fmt: TemplateFormat
) -> Minutia:
    """The ``Minutia`` that stored values (type code, pixels, angle units, quality) stand for."""
    return Minutia(
        x=float(x), y=float(y), angle=math.radians(angle * fmt.angle_unit_deg),
        kind=_TYPE_KIND[MinutiaTypeCode(code)], quality=quality,
    )


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise TemplateError(f"{what} must be an integer in {low}..{high}, not {value!r}")


# -- reading ----------------------------------------------------------------------------------


class _Cursor:
    """Reads big-endian fields and names the field in the error when the record is short."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.end = end
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > self.end:
            raise TemplateError(f"record ends inside the {what} (offset {self.pos}, "
                                f"{size} bytes needed, record length {self.end})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")


def _read(data: bytes, fmt: TemplateFormat) -> MinutiaeTemplate:
    cur = _Cursor(data, len(data))
    if cur.take(4, "format identifier") != FORMAT_IDENTIFIER:
        raise TemplateError(f"not a finger minutiae record: format identifier is "
                            f"{data[:4]!r}, expected {FORMAT_IDENTIFIER!r}")
    version = cur.take(4, "version")
    if version != VERSION_2005:
        raise TemplateError(f"version {version!r} is not the 2004/2005 version {VERSION_2005!r}")
    owner = ptype = 0
    if fmt is TemplateFormat.ISO_19794_2_2005:
        length = cur.u32("record length")
        minimum = ISO_HEADER_LENGTH
    else:
        length = cur.u16("record length")
        minimum = ANSI_SHORT_HEADER_LENGTH
        if length == 0:
            length = cur.u32("long record length")
            minimum = ANSI_LONG_HEADER_LENGTH
        owner = cur.u16("CBEFF product owner")
        ptype = cur.u16("CBEFF product type")
    if length < minimum:
        raise TemplateError(f"record length {length} is shorter than the {minimum}-byte header")
    if length != len(data):
        raise TemplateError(f"record length field says {length} bytes, data has {len(data)}")
    equipment = cur.u16("capture equipment")
    width = cur.u16("image width")
    height = cur.u16("image height")
    xres = cur.u16("x resolution")
    yres = cur.u16("y resolution")
    count = cur.u8("number of finger views")
    reserved = cur.u8("reserved header byte")
    if reserved != 0:
        raise TemplateError(f"reserved header byte is {reserved}, must be 0")
    views = tuple(_read_view(cur, fmt, i) for i in range(1, count + 1))
    if cur.pos != length:
        raise TemplateError(f"{length - cur.pos} bytes left after the last finger view")
    return MinutiaeTemplate(
        format=fmt, width=width, height=height, x_resolution=xres, y_resolution=yres,
        views=views, capture_equipment=equipment, product_owner=owner, product_type=ptype,
    )


def _read_view(cur: _Cursor, fmt: TemplateFormat, index: int) -> TemplateView:
    where = f"finger view {index}"
    position = cur.u8(f"{where} finger position")
    if position > 10:
        raise TemplateError(f"{where}: finger position {position} is not 0..10")
    packed = cur.u8(f"{where} view number and impression type")
    view_number, impression = packed >> 4, packed & 0x0F
    if impression not in IMPRESSION_TYPES:
        raise TemplateError(f"{where}: impression type {impression} is not one of "
                            f"{sorted(IMPRESSION_TYPES)}")
    quality = cur.u8(f"{where} finger quality")
    if quality > 100:
        raise TemplateError(f"{where}: finger quality {quality} is above 100")
    count = cur.u8(f"{where} number of minutiae")
    minutiae = []
    for n in range(1, count + 1):
        first, second, angle, mquality = struct.unpack(">HHBB", cur.take(6, f"{where} minutia {n}"))
        code = first >> 14
        if code == 0b11:
            raise TemplateError(f"{where}: minutia {n} has the reserved type bits 11")
        if second >> 14:
            raise TemplateError(f"{where}: minutia {n} has non-zero reserved bits")
        if angle >= fmt.angle_steps:
            raise TemplateError(
                f"{where}: minutia {n} angle {angle} is not 0..{fmt.angle_steps - 1}"
            )
        if mquality > 100:
            raise TemplateError(f"{where}: minutia {n} quality {mquality} is above 100")
        minutiae.append(
            minutia_from_units(code, first & MAX_COORDINATE, second & MAX_COORDINATE, angle,
                                 mquality, fmt)
        )
    extended_length = cur.u16(f"{where} extended data length")
    extended = cur.take(extended_length, f"{where} extended data")
    _check_extended(extended, where)
    return TemplateView(
        position=position, impression_type=impression, finger_quality=quality,
        minutiae=tuple(minutiae), view_number=view_number, extended_data=extended,
    )


def _check_extended(block: bytes, where: str) -> None:
    """Each extended data area is type (2), length including its 4-byte header (2), data."""
    pos = 0
    while pos < len(block):
        if pos + 4 > len(block):
            raise TemplateError(f"{where}: extended data ends inside an area header")
        area_length = int.from_bytes(block[pos + 2:pos + 4], "big")
        if area_length < 4 or pos + area_length > len(block):
            raise TemplateError(f"{where}: extended data area of length {area_length} does not "
                                f"fit the {len(block)}-byte block")
        pos += area_length
