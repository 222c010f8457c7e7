"""Check an ANSI/NIST-ITL transaction before it leaves the station, or one that arrived.

``validate_transaction`` never raises on bad bytes: it returns one ``ValidationIssue`` per
problem, located by record index, record type and field tag, so a technician (or the central
service) sees every defect at once. Checks, in order:

* framing (what ``read_transaction`` refuses: LEN, FS, record types against CNT) - when this
  fails nothing else can be checked and the single issue is returned;
* Type-1: mandatory fields, VER, DAT/GMT formats, PRY, NSR/NTR, CNT's count and IDCs;
* every tagged record: IDC present, text fields readable (UTF-8 only when 1.015 DCS says so);
* Type-14 and Type-4: mandatory fields, code values, resolution, compression, segment boxes,
  quality fields, and that the image data decodes to the stated size (WSQ through NBIS);
* Type-9: the INCITS 378 block's fields, minutiae count and ranges, and the image it refers to;
* with a profile: TOT, VER, the Type-2 fields it makes mandatory, one Type-2 record, and the
  prints a tenprint must hold (rolled 1..10, slaps, thumbs) unless annotated XX/UP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from appliance.domain import SLAP_FINGERS, Position
from appliance.records.errors import RecordError, TransactionError
from appliance.records.profile import Profile, missing_prints
from appliance.records.transaction import (
    DATA_FIELD,
    FingerprintImageRecord,
    TaggedRecord,
    Transaction,
    read_transaction,
    tag,
)
from appliance.records.type9 import has_m1_block
from appliance.records.wsq import decode_wsq, read_wsq_header

KNOWN_VERSIONS = frozenset({"0200", "0300", "0400", "0500", "0501", "0502"})
COMPRESSION_CODES = ("NONE", "WSQ20", "JPEGB", "JPEGL", "JP2", "JP2L", "PNG")
TYPE1_MANDATORY = (1, 2, 3, 4, 5, 7, 8, 9, 11, 12)
TYPE14_MANDATORY = tuple(range(1, 14))
#: Finger impression codes allowed in Types 4, 9 and 14 (ANSI/NIST-ITL 1-2011 Table 7).
FINGER_IMPRESSIONS = frozenset(range(0, 9)) | frozenset(range(20, 30))
#: Finger position codes allowed in Type-14 (Table 8: fingers, plain, EJI and tips).
TYPE14_POSITIONS = frozenset(range(0, 16)) | {19} | frozenset(range(40, 51))
AMPUTATION_CODES = frozenset({"XX", "UP"})
QUALITY_SPECIAL = frozenset({254, 255})
_RESOLUTION = re.compile(r"^\d{2}\.\d{2}$")


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One defect: where it is (record index from 0, record type, field tag) and what it is."""

    record_index: int | None
    record_type: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.record_index is not None:
            kind = f" (Type-{self.record_type})" if self.record_type is not None else ""
            where.append(f"record {self.record_index}{kind}")
        if self.field is not None:
            where.append(self.field)
        return f"{' '.join(where) or 'transaction'}: {self.message}"


class _Report:
    """Collects issues for one record at a time."""

    def __init__(self, decode_images: bool = True) -> None:
        self.issues: list[ValidationIssue] = []
        self.index: int | None = None
        self.type: int | None = None
        self.decode_images = decode_images

    def at(self, index: int | None, record_type: int | None) -> _Report:
        self.index, self.type = index, record_type
        return self

    def add(self, field: int | str | None, message: str) -> None:
        if isinstance(field, int):
            field = tag(self.type or 0, field)
        self.issues.append(ValidationIssue(self.index, self.type, field, message))


def validate_transaction(data: bytes, profile: Profile | None = None, *,
                         decode_images: bool = True) -> list[ValidationIssue]:
    """Every defect found in ``data``, checked against ``profile`` when one is given.

    Every WSQ codestream is walked marker by marker (frame size against the record, tables,
    the three blocks, nothing after EOI). With ``decode_images`` (the default, for transactions
    from elsewhere) each is also decoded by the NBIS decoder in its separate process. The
    station's own submit path passes False for the WSQ it has just encoded itself: the walk
    still catches a truncated or malformed codestream, and the decode, one of the two largest
    costs of a ten-print submit, only repeated the encoder's work.
    """
    try:
        transaction = read_transaction(data)
    except TransactionError as exc:
        return [ValidationIssue(exc.record_index, exc.record_type, exc.field, exc.message)]
    report = _Report(decode_images)
    _check_type1(transaction, report.at(0, 1), profile)
    utf8 = _declares_utf8(transaction.type1)
    image_idcs = set()
    for index, record in enumerate(transaction.records):
        report.at(index, record.type)
        if isinstance(record, TaggedRecord):
            _check_text(record, report, utf8)
            if index > 0 and record.idc is None:
                report.add(2, "IDC is missing or not a number")
        if record.type in (4, 13, 14) and record.idc is not None:
            image_idcs.add(record.idc)
        check = _RECORD_CHECKS.get(record.type)
        if check is not None:
            check(record, report, profile)
    for index, record in transaction.of_type(9):
        if isinstance(record, TaggedRecord) and record.idc not in image_idcs:
            report.at(index, 9).add(2, f"IDC {record.idc} matches no image record (Type-4/13/14)")
    if profile is not None:
        _check_profile(transaction, report.at(None, None), profile)
    return report.issues


# -- Type-1 -----------------------------------------------------------------------------------


def _check_type1(transaction: Transaction, report: _Report, profile: Profile | None) -> None:
    type1 = transaction.type1
    _mandatory(type1, TYPE1_MANDATORY, report)
    version = _text(type1, 2)
    if version is not None and version not in KNOWN_VERSIONS:
        known = ", ".join(sorted(KNOWN_VERSIONS))
        report.add(2, f"VER {version!r} is not a known version ({known})")
    if profile is not None:
        if version is not None and version != profile.version:
            report.add(2, f"VER {version} but the {profile.name} profile sends {profile.version}")
        tot = _text(type1, 4)
        if tot is not None and tot != profile.tot:
            report.add(4, f"TOT {tot!r} but the {profile.name} profile expects {profile.tot!r}")
    _date(type1, 5, "%Y%m%d", report)
    _date(type1, 14, "%Y%m%d%H%M%SZ", report)
    priority = _text(type1, 6)
    if priority is not None and priority not in set("123456789"):
        report.add(6, f"PRY {priority!r} is not 1..9")
    for number in (11, 12):
        value = _text(type1, number)
        if value is not None and not _RESOLUTION.match(value):
            report.add(number, f"{value!r} is not a resolution of the form NN.NN (ppmm)")
    subfields = type1.subfields(3)
    count = _as_int(subfields[0][1]) if subfields and len(subfields[0]) == 2 else None
    if count is not None and count != len(transaction.records) - 1:
        report.add(3, f"CNT says {count} records follow Type-1, the transaction has "
                      f"{len(transaction.records) - 1}")
    for index, (sub, record) in enumerate(zip(subfields[1:], transaction.records[1:], strict=False),
                                          start=1):
        idc, listed = record.idc, _as_int(sub[1]) if len(sub) > 1 else None
        if listed is not None and idc is not None and listed != idc:
            report.add(3, f"CNT lists record {index} with IDC {sub[1]}, the record says {idc}")


def _declares_utf8(type1: TaggedRecord) -> bool:
    return any(len(sub) > 1 and sub[1].upper() in ("UTF-8", "UTF8")
               for sub in _subfields(type1, 15))


# -- every tagged record ----------------------------------------------------------------------


def _check_text(record: TaggedRecord, report: _Report, utf8: bool) -> None:
    for number, raw in record.fields.items():
        if number == DATA_FIELD:
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            report.add(number, "text is not valid ASCII/UTF-8")
            continue
        if not raw.isascii() and not utf8:
            report.add(number, "non-ASCII text, but 1.015 DCS does not declare UTF-8")


# -- Type-2 -----------------------------------------------------------------------------------


def _check_type2(record: TaggedRecord, report: _Report, profile: Profile | None) -> None:
    for items in _subfields(record, 84):
        if len(items) != 2 or not _int_in(items[0], range(1, 11)) or \
                items[1] not in AMPUTATION_CODES:
            report.add(84, f"AMP entry {items!r} is not FGP(1..10)<US>XX|UP")
    if profile is None:
        return
    for rule in profile.type2_fields:
        if rule.mandatory and not record.fields.get(rule.number):
            report.add(rule.number, f"{rule.mnemonic} is mandatory for {profile.name}")


# -- fingerprint images -----------------------------------------------------------------------


def _check_type14(record: TaggedRecord, report: _Report, profile: Profile | None) -> None:
    _mandatory(record, TYPE14_MANDATORY, report)
    if DATA_FIELD not in record.fields and 18 not in record.fields:
        report.add(DATA_FIELD, "image data is missing (and no 14.018 AMP explains it)")
    impression = _int_field(record, 3, report)
    if impression is not None and impression not in FINGER_IMPRESSIONS:
        report.add(3, f"IMP {impression} is not a finger impression code")
    positions = [_as_int(items[0]) for items in _subfields(record, 13)]
    if any(p is None or p not in TYPE14_POSITIONS for p in positions):
        report.add(13, f"FGP {_text(record, 13)!r} holds an unknown finger position")
    width, height = _int_field(record, 6, report), _int_field(record, 7, report)
    slc = _int_field(record, 8, report)
    if slc is not None and slc not in (0, 1, 2):
        report.add(8, f"SLC {slc} is not 0, 1 (ppi) or 2 (ppcm)")
    thps = _int_field(record, 9, report)
    _int_field(record, 10, report)
    if profile is not None and slc in (1, 2) and thps is not None:
        ppi = thps if slc == 1 else round(thps * 2.54)
        if ppi < profile.min_ppi:
            report.add(9, f"{ppi} ppi is below the {profile.min_ppi} ppi {profile.name} needs")
    _date(record, 5, "%Y%m%d", report)
    bpx = _int_field(record, 12, report)
    compression = _text(record, 11)
    if compression is not None and compression not in COMPRESSION_CODES:
        report.add(11, f"CGA {compression!r} is not one of {', '.join(COMPRESSION_CODES)}")
    elif profile is not None and compression is not None and compression != profile.compression:
        report.add(11, f"CGA {compression} but the {profile.name} profile expects "
                       f"{profile.compression}")
    if compression == "WSQ20" and bpx is not None and bpx != 8:
        report.add(12, f"BPX {bpx} with WSQ, which is 8-bit only")
    _check_image(record.fields.get(DATA_FIELD), compression, width, height, bpx, report,
                 DATA_FIELD)
    slap = positions[0] if len(positions) == 1 and positions[0] is not None else None
    for items in _subfields(record, 18):
        if len(items) != 2 or _as_int(items[0]) is None or items[1] not in AMPUTATION_CODES:
            report.add(18, f"AMP entry {items!r} is not FGP<US>XX|UP")
    _check_segments(record, slap, width, height, report)
    for items in _subfields(record, 22):
        if len(items) != 2 or not (_int_in(items[1], range(1, 6))
                                   or _int_in(items[1], QUALITY_SPECIAL)):
            report.add(22, f"NQM entry {items!r} is not FGP<US>1..5 (or 254/255)")
    for items in _subfields(record, 24):
        if len(items) != 4 or not (_int_in(items[1], range(0, 101))
                                   or _int_in(items[1], QUALITY_SPECIAL)) \
                or not re.fullmatch(r"[0-9A-Fa-f]{4}", items[2]) \
                or not _int_in(items[3], range(0, 65536)):
            report.add(24, f"FQM entry {items!r} is not FGP<US>0..100<US>vendor(4 hex)<US>product")


def _check_segments(record: TaggedRecord, slap: int | None, width: int | None,
                    height: int | None, report: _Report) -> None:
    fingers = {int(f) for f in SLAP_FINGERS.get(Position(slap), ())} if slap in (13, 14, 15) \
        else None
    for items in _subfields(record, 21):
        values = [_as_int(v) for v in items]
        if len(values) != 5 or any(v is None for v in values):
            report.add(21, f"SEG entry {items!r} is not FGP<US>left<US>right<US>top<US>bottom")
            continue
        finger, left, right, top, bottom = values
        if fingers is not None and finger not in fingers:
            report.add(21, f"SEG names finger {finger}, which is not in slap {slap}")
        if width is not None and height is not None and not (
                0 <= left < right < width and 0 <= top < bottom < height):
            report.add(21, f"SEG box of finger {finger} lies outside the {width}x{height} image")


def _check_type4(record: FingerprintImageRecord, report: _Report, profile: Profile | None) -> None:
    if record.impression_type not in range(0, 4):
        report.add("4.003", f"IMP {record.impression_type} is not 0..3")
    first, rest = record.positions[0], record.positions[1:]
    if first > 14 or any(p != 255 and p > 14 for p in rest):
        report.add("4.004", f"FGP {list(record.positions)} holds an unknown finger position")
    if record.scanning_resolution not in (0, 1):
        report.add("4.005", f"ISR {record.scanning_resolution} is not 0 or 1")
    if record.compression > 6:
        report.add("4.008", f"GCA {record.compression} is not a compression code 0..6")
    compression = {0: "NONE", 1: "WSQ20"}.get(record.compression)
    _check_image(record.image, compression, record.width, record.height, 8, report, "4.009")


def _check_image(data: bytes | None, compression: str | None, width: int | None,
                 height: int | None, bpx: int | None, report: _Report,
                 field: int | str) -> None:
    if data is None or width is None or height is None:
        return
    if width <= 0 or height <= 0:
        report.add(field, f"image size {width}x{height} is empty")
        return
    if compression == "NONE" and bpx:
        expected = width * height * bpx // 8
        if len(data) != expected:
            report.add(field, f"{len(data)} bytes of uncompressed data, {width}x{height}x{bpx} "
                              f"needs {expected}")
    elif compression == "WSQ20":
        try:
            header = read_wsq_header(data)
            if (header.width, header.height) != (width, height):
                report.add(field, f"WSQ frame is {header.width}x{header.height}, the record "
                                  f"says {width}x{height}")
                return
            if report.decode_images:
                decode_wsq(data)
        except RecordError as exc:
            report.add(field, f"WSQ image does not decode: {exc}")


# -- Type-9 -----------------------------------------------------------------------------------


def _check_type9(record: TaggedRecord, report: _Report, profile: Profile | None) -> None:
    _mandatory(record, (1, 2, 3, 4), report)
    fmt = _text(record, 4)
    if fmt is not None and fmt not in ("S", "U"):
        report.add(4, f"FMT {fmt!r} is not S or U")
    impression = _int_field(record, 3, report)
    if impression is not None and impression not in FINGER_IMPRESSIONS:
        report.add(3, f"IMP {impression} is not a finger impression code")
    if not has_m1_block(record):
        return
    _mandatory(record, (126, 127, 128, 129, 130, 131, 132, 133, 134, 136), report)
    width, height = _int_field(record, 128, report), _int_field(record, 129, report)
    for number in (130, 131, 132, 133):
        _int_field(record, number, report)
    position = _int_field(record, 134, report)
    if position is not None and not 0 <= position <= 10:
        report.add(134, f"FGP {position} is not a finger position 0..10")
    for items in _subfields(record, 135):
        if len(items) != 3 or not (_int_in(items[0], range(0, 101))
                                   or _int_in(items[0], QUALITY_SPECIAL)):
            report.add(135, f"FQD entry {items!r} is not quality<US>vendor<US>algorithm")
    minutiae = _subfields(record, 137)
    count = _int_field(record, 136, report)
    if count is not None and count != len(minutiae):
        report.add(136, f"NOM says {count} minutiae, 9.137 holds {len(minutiae)}")
    for n, items in enumerate(minutiae, 1):
        values = [_as_int(v) for v in items]
        if len(values) != 6 or any(v is None for v in values):
            report.add(137, f"minutia {n} is not index~x~y~angle~type~quality")
            continue
        _index, x, y, angle, kind, quality = values
        if (width is not None and not 0 <= x < width) or \
                (height is not None and not 0 <= y < height):
            report.add(137, f"minutia {n} at ({x}, {y}) lies outside the {width}x{height} image")
        if not 0 <= angle <= 179 or kind not in (0, 1, 2) or not 0 <= quality <= 100:
            report.add(137, f"minutia {n}: angle {angle}, type {kind} or quality {quality} out "
                            f"of range")


# -- profile ----------------------------------------------------------------------------------


def _check_profile(transaction: Transaction, report: _Report, profile: Profile) -> None:
    type2 = [r for _, r in transaction.of_type(2)]
    if len(type2) != 1:
        report.add(None, f"{profile.name} needs exactly one Type-2 record, found {len(type2)}")
    present: set[int] = set()
    marked: dict[Position, str] = {}
    for _, record in transaction.of_type(14):
        if isinstance(record, TaggedRecord):
            present.update(p for p in (_as_int(i[0]) for i in _subfields(record, 13))
                           if p is not None)
            marked.update(_amputations(record, 18))
    for _, record in transaction.of_type(4):
        if isinstance(record, FingerprintImageRecord):
            present.add(record.positions[0])
    for record in type2:
        if isinstance(record, TaggedRecord):
            marked.update(_amputations(record, 84))
    for gap in missing_prints(profile, present, marked):
        report.add(None, f"{profile.name} needs {gap}")


def _amputations(record: TaggedRecord, number: int) -> dict[Position, str]:
    marks = {}
    for items in _subfields(record, number):
        finger = _as_int(items[0]) if items else None
        if finger is not None and 1 <= finger <= 10 and len(items) > 1:
            marks[Position(finger)] = items[1]
    return marks


# -- small helpers ----------------------------------------------------------------------------


def _text(record: TaggedRecord, number: int) -> str | None:
    raw = record.fields.get(number)
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _subfields(record: TaggedRecord, number: int) -> list[list[str]]:
    value = _text(record, number)
    if value is None:
        return []
    return [sub.split("\x1f") for sub in value.split("\x1e")]


def _as_int(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _int_in(value: str, allowed) -> bool:
    number = _as_int(value)
    return number is not None and number in allowed


def _int_field(record: TaggedRecord, number: int, report: _Report) -> int | None:
    value = _text(record, number)
    if value is None:
        return None
    parsed = _as_int(value)
    if parsed is None:
        report.add(number, f"{value!r} is not a whole number")
    return parsed


def _mandatory(record: TaggedRecord, numbers, report: _Report) -> None:
    for number in numbers:
        if not record.fields.get(number):
            report.add(number, "mandatory field is missing or empty")


def _date(record: TaggedRecord, number: int, pattern: str, report: _Report) -> None:
    value = _text(record, number)
    if value is None:
        return
    try:
        datetime.strptime(value, pattern)
    except ValueError:
        report.add(number, f"{value!r} is not a valid date of the form {pattern}")


_RECORD_CHECKS: dict[int, Callable] = {
    2: _check_type2,
    4: _check_type4,
    9: _check_type9,
    14: _check_type14,
}
