"""ANSI/NIST-ITL 1-2011 transactions in the traditional encoding: framing, reading, writing.

A transaction is a Type-1 record followed by the records its field 1.003 (CNT) lists. Tagged
records (Types 1, 2, 9, 10, 13, 14, 15, 16, 17 ...) are ASCII fields ``T.NNN:value`` separated
by GS (0x1D) and ended by FS (0x1C); inside a value RS (0x1E) separates subfields and US (0x1F)
information items. The first field ``T.001`` (LEN) counts the record's bytes, FS included; the
image field ``T.999`` is binary, comes last and runs to the end of the record. Types 3..8 are
binary with a 4-byte big-endian length first; Type-4 (high-resolution grayscale fingerprint) is
parsed here, its 18-byte header being::

    LEN 4 | IDC 1 | IMP 1 | FGP 6 (unused = 255) | ISR 1 | HLL 2 | VLL 2 | GCA 1 | image data

Types 3, 5, 6, 7 and 8 are kept as opaque bytes: the reader frames them, the writer puts them back
unchanged.

Values are kept as the bytes that were read, in the order read, so ``write_transaction`` gives
back exactly what ``read_transaction`` read whenever LEN and CNT were right; the writer always
recomputes LEN of every tagged record and, by default, CNT from the records present. Text is
7-bit ASCII unless 1.015 (DCS) declares UTF-8; ``TaggedRecord.text`` decodes UTF-8, which ASCII
is a subset of.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from appliance.records.errors import TransactionError

FS, GS, RS, US = 0x1C, 0x1D, 0x1E, 0x1F
SEPARATORS = bytes((FS, GS, RS, US))
#: Record types in binary form (ANSI/NIST-ITL 1-2011 Table 3; 3, 5, 6 deprecated).
BINARY_TYPES = frozenset({3, 4, 5, 6, 7, 8})
#: Smallest legal length of each binary record type (its fixed header).
_BINARY_HEADER = {3: 18, 4: 18, 5: 18, 6: 18, 7: 5, 8: 12}
#: Field number of the binary image data in tagged records.
DATA_FIELD = 999
_TAG = re.compile(rb"([0-9]{1,3})\.([0-9]{1,9}):")
MAX_LEN_DIGITS = 12

Value = str | bytes | int | Sequence[Sequence[str | int]]


def tag(record_type: int, number: int) -> str:
    """The field tag as the standard writes it, e.g. ``tag(14, 11) == "14.011"``."""
    return f"{record_type}.{number:03d}"


@dataclass(slots=True)
class TaggedRecord:
    """A tagged-field record: field number -> raw value bytes, in the order of the file."""

    type: int
    fields: dict[int, bytes] = field(default_factory=dict)

    @property
    def idc(self) -> int | None:
        """The information designation character (field 2) as a number, if readable."""
        raw = self.fields.get(2)
        return int(raw) if raw is not None and raw.isdigit() else None

    def get(self, number: int) -> bytes | None:
        """Raw bytes of a field, or ``None`` when absent."""
        return self.fields.get(number)

    def text(self, number: int) -> str | None:
        """A field as text (UTF-8, which covers ASCII); ``None`` when absent."""
        raw = self.fields.get(number)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransactionError("value is not valid ASCII/UTF-8 text",
                                   record_type=self.type, field=tag(self.type, number)) from exc

    def subfields(self, number: int) -> list[list[str]]:
        """A field split into subfields (RS) and information items (US); [] when absent."""
        value = self.text(number)
        if value is None:
            return []
        return [sub.split("\x1f") for sub in value.split("\x1e")]

    def set(self, number: int, value: Value) -> None:
        """Set a field from text, a number, subfields of items, or raw bytes.

        Raw bytes may hold RS/US structure (and anything at all in field 999); text may hold no
        separator at all.
        """
        self.fields[number] = encode_value(value, self.type, number)


@dataclass(slots=True)
class FingerprintImageRecord:
    """A Type-4 record: high-resolution grayscale fingerprint image (binary header)."""

    idc: int
    impression_type: int
    positions: tuple[int, ...]
    scanning_resolution: int
    width: int
    height: int
    compression: int
    image: bytes

    type: int = 4

    def __post_init__(self) -> None:
        if len(self.positions) != 6:
            raise TransactionError("FGP must hold exactly 6 position bytes", record_type=4,
                                   field="4.004")


@dataclass(slots=True)
class OpaqueRecord:
    """A binary record this layer frames but does not interpret (Types 3, 5, 6, 7, 8)."""

    type: int
    data: bytes

    @property
    def idc(self) -> int:
        """The IDC byte that follows the 4-byte length in every binary record."""
        return self.data[4]


Record = TaggedRecord | FingerprintImageRecord | OpaqueRecord


@dataclass(slots=True)
class Transaction:
    """A whole transaction: ``records[0]`` is the Type-1 record."""

    records: list[Record]

    @property
    def type1(self) -> TaggedRecord:
        """The Type-1 transaction information record."""
        first = self.records[0] if self.records else None
        if not isinstance(first, TaggedRecord) or first.type != 1:
            raise TransactionError("transaction does not start with a Type-1 record")
        return first

    def of_type(self, record_type: int) -> Iterator[tuple[int, Record]]:
        """(index, record) for every record of one type, in order."""
        return ((i, r) for i, r in enumerate(self.records) if r.type == record_type)


def encode_value(value: Value, record_type: int, number: int) -> bytes:
    """The bytes of one field value; separators may appear only where the structure puts them."""
    where = tag(record_type, number)
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)  # may hold RS/US structure; GS and FS would break the framing
        if number != DATA_FIELD and (b"\x1c" in raw or b"\x1d" in raw):
            raise TransactionError("raw value contains a GS or FS separator", field=where,
                                   record_type=record_type)
        return raw
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    if isinstance(value, str):
        items: Sequence[Sequence[str | int]] = [[value]]
    else:
        items = value
    subfields = []
    for sub in items:
        parts = []
        for item in sub:
            text = str(item)
            if any(ch in "\x1c\x1d\x1e\x1f" for ch in text):
                raise TransactionError("value contains a separator character", field=where,
                                       record_type=record_type)
            parts.append(text)
        subfields.append("\x1f".join(parts))
    return "\x1e".join(subfields).encode("utf-8")


# -- reading ----------------------------------------------------------------------------------


def read_transaction(data: bytes) -> Transaction:
    """Frame and parse a traditional-encoding transaction.

    Raises ``TransactionError`` (naming record index, type and field) when the bytes cannot be
    framed: a bad LEN, a record that does not end with FS, a record type that differs from CNT,
    a truncated binary record or bytes after the last record. Consistency checks that do not
    stop framing (CNT's record count, IDCs, mandatory fields) are left to ``validate``.
    """
    data = bytes(data)
    if not data.startswith(b"1.001:"):
        raise TransactionError("not an ANSI/NIST-ITL transaction: data does not start with "
                               "field 1.001", record_index=0, record_type=1, field="1.001")
    type1, pos = _read_tagged(data, 0, 1, 0)
    records: list[Record] = [type1]
    for index, (record_type, _idc) in enumerate(_content_list(type1), start=1):
        if pos >= len(data):
            raise TransactionError(f"transaction ends after {index - 1} records but 1.003 lists "
                                   f"more", record_index=index, record_type=record_type)
        if record_type in BINARY_TYPES:
            record, pos = _read_binary(data, pos, record_type, index)
        else:
            record, pos = _read_tagged(data, pos, record_type, index)
        records.append(record)
    if pos != len(data):
        raise TransactionError(f"{len(data) - pos} bytes follow the last record that 1.003 "
                               f"lists", record_index=len(records))
    return Transaction(records)


def _content_list(type1: TaggedRecord) -> list[tuple[int, str]]:
    """(record type, IDC text) of each record after Type-1, from field 1.003 (CNT)."""
    where = {"record_index": 0, "record_type": 1, "field": "1.003"}
    if 3 not in type1.fields:
        raise TransactionError("mandatory field is missing", **where)
    try:
        subfields = type1.subfields(3)
    except TransactionError as exc:
        raise TransactionError(exc.message, **where) from exc
    first = subfields[0]
    if len(first) != 2 or first[0] != "1" or not _is_number(first[1]):
        raise TransactionError(f"first subfield must be 1<US>count, not {first!r}", **where)
    listed = []
    for n, sub in enumerate(subfields[1:], start=2):
        if len(sub) != 2 or not _is_number(sub[0]) or not 2 <= int(sub[0]) <= 99:
            raise TransactionError(f"subfield {n} must be record type<US>IDC, not {sub!r}",
                                   **where)
        listed.append((int(sub[0]), sub[1]))
    return listed


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= MAX_LEN_DIGITS


def _read_tagged(data: bytes, pos: int, record_type: int, index: int) -> tuple[TaggedRecord, int]:
    here = {"record_index": index, "record_type": record_type}
    first = _TAG.match(data, pos)
    if first is None or int(first.group(1)) != record_type or int(first.group(2)) != 1:
        raise TransactionError(f"record must start with field {tag(record_type, 1)} (LEN), "
                               f"found {data[pos:pos + 8]!r}", field=tag(record_type, 1), **here)
    end_digits = first.end()
    while end_digits < len(data) and data[end_digits:end_digits + 1].isdigit():
        end_digits += 1
    digits = data[first.end():end_digits]
    if not digits or len(digits) > MAX_LEN_DIGITS:
        raise TransactionError(f"LEN must be a number, found {data[first.end():end_digits + 8]!r}",
                               field=tag(record_type, 1), **here)
    length = int(digits)
    if length < end_digits - pos + 1 or pos + length > len(data):
        raise TransactionError(f"LEN {length} does not fit: {len(data) - pos} bytes remain",
                               field=tag(record_type, 1), **here)
    record_bytes = data[pos:pos + length]
    if record_bytes[-1] != FS:
        raise TransactionError(f"record of LEN {length} does not end with the FS separator",
                               field=tag(record_type, 1), **here)
    return _parse_fields(record_bytes, record_type, index), pos + length


def _parse_fields(record: bytes, record_type: int, index: int) -> TaggedRecord:
    here = {"record_index": index, "record_type": record_type}
    body_end = len(record) - 1
    result = TaggedRecord(record_type)
    pos = 0
    while pos < body_end:
        match = _TAG.match(record, pos)
        if match is None:
            raise TransactionError(f"malformed field tag {record[pos:pos + 10]!r} at byte {pos}",
                                   **here)
        tag_type, number = int(match.group(1)), int(match.group(2))
        where = tag(tag_type, number)
        if tag_type != record_type:
            raise TransactionError(f"field of another record type inside a Type-{record_type} "
                                   f"record", field=where, **here)
        if number in result.fields:
            raise TransactionError("field appears twice", field=where, **here)
        start = match.end()
        if number == DATA_FIELD:
            end = body_end
        else:
            gs = record.find(b"\x1d", start, body_end)
            end = body_end if gs < 0 else gs
            if record.find(b"\x1c", start, end) >= 0:
                raise TransactionError("FS separator inside a field value", field=where, **here)
        result.fields[number] = record[start:end]
        pos = end + 1
        if end < body_end and pos >= body_end:
            raise TransactionError("record ends with GS FS: an empty field follows", field=where,
                                   **here)
    return result


def _read_binary(data: bytes, pos: int, record_type: int, index: int) -> tuple[Record, int]:
    here = {"record_index": index, "record_type": record_type}
    if pos + 4 > len(data):
        raise TransactionError("transaction ends inside the 4-byte LEN", field=f"{record_type}.001",
                               **here)
    length = int.from_bytes(data[pos:pos + 4], "big")
    minimum = _BINARY_HEADER[record_type]
    if length < minimum or pos + length > len(data):
        raise TransactionError(f"LEN {length} does not fit: the header needs {minimum} bytes and "
                               f"{len(data) - pos} remain", field=f"{record_type}.001", **here)
    chunk = data[pos:pos + length]
    if record_type != 4:
        return OpaqueRecord(record_type, chunk), pos + length
    return FingerprintImageRecord(
        idc=chunk[4],
        impression_type=chunk[5],
        positions=tuple(chunk[6:12]),
        scanning_resolution=chunk[12],
        width=int.from_bytes(chunk[13:15], "big"),
        height=int.from_bytes(chunk[15:17], "big"),
        compression=chunk[17],
        image=chunk[18:],
    ), pos + length


# -- writing ----------------------------------------------------------------------------------


def write_transaction(transaction: Transaction, *, recount: bool = True) -> bytes:
    """Serialise a transaction.

    LEN is always recomputed, CNT (1.003) too unless ``recount`` is False. The records
    themselves are not modified.
    """
    records = transaction.records
    type1 = transaction.type1
    out = []
    for index, record in enumerate(records):
        if index == 0 and recount:
            out.append(write_tagged(TaggedRecord(1, _with_content_list(type1, records)), 0))
        else:
            out.append(_write_record(record, index))
    return b"".join(out)


def content_list(records: Sequence[Record]) -> list[list[str]]:
    """The 1.003 (CNT) subfields describing ``records`` (the first being Type-1)."""
    listed = [["1", str(len(records) - 1)]]
    for index, record in enumerate(records[1:], start=1):
        if isinstance(record, TaggedRecord):
            raw = record.fields.get(2)
            if raw is None:
                raise TransactionError("IDC is missing", record_index=index,
                                       record_type=record.type, field=tag(record.type, 2))
            idc = raw.decode("ascii", errors="replace")
        else:
            idc = f"{record.idc:02d}"
        listed.append([str(record.type), idc])
    return listed


def _with_content_list(type1: TaggedRecord, records: Sequence[Record]) -> dict[int, bytes]:
    value = encode_value(content_list(records), 1, 3)
    fields = dict(type1.fields)
    if 3 in fields:
        fields[3] = value
        return fields
    ordered: dict[int, bytes] = {}
    for number, raw in fields.items():
        ordered[number] = raw
        if number == 2:
            ordered[3] = value
    if 3 not in ordered:
        ordered = {3: value, **ordered}
    return ordered


def _write_record(record: Record, index: int) -> bytes:
    if isinstance(record, OpaqueRecord):
        return record.data
    if isinstance(record, FingerprintImageRecord):
        return _write_type4(record, index)
    return write_tagged(record, index)


def write_tagged(record: TaggedRecord, index: int = 0) -> bytes:
    """One tagged record with its LEN computed.

    Field 1 comes first, the others in stored order, except the binary field 999, which always
    comes last.
    """
    parts = []
    order = [n for n in record.fields if n not in (1, DATA_FIELD)]
    if DATA_FIELD in record.fields:
        order.append(DATA_FIELD)  # the binary field runs to the end of the record
    for number in order:
        raw = record.fields[number]
        if number != DATA_FIELD and (b"\x1c" in raw or b"\x1d" in raw):
            raise TransactionError("value contains a GS or FS separator", record_index=index,
                                   record_type=record.type, field=tag(record.type, number))
        parts.append(tag(record.type, number).encode("ascii") + b":" + raw)
    prefix = tag(record.type, 1).encode("ascii") + b":"
    body = b"".join(b"\x1d" + part for part in parts) + b"\x1c"
    length = len(prefix) + len(body)
    digits = len(str(length))
    while len(str(length + digits)) != digits:
        digits += 1
    return prefix + str(length + digits).encode("ascii") + body


def _write_type4(record: FingerprintImageRecord, index: int) -> bytes:
    here = {"record_index": index, "record_type": 4}
    values = (record.idc, record.impression_type, *record.positions, record.scanning_resolution,
              record.compression)
    if not all(isinstance(v, int) and 0 <= v <= 255 for v in values):
        raise TransactionError("IDC, IMP, FGP, ISR and GCA must each fit in one byte", **here)
    if not (0 <= record.width <= 0xFFFF and 0 <= record.height <= 0xFFFF):
        raise TransactionError("HLL and VLL must fit in two bytes", **here)
    length = 18 + len(record.image)
    if length > 0xFFFFFFFF:
        raise TransactionError("image too large for a 4-byte LEN", field="4.001", **here)
    return (length.to_bytes(4, "big") + bytes((record.idc, record.impression_type))
            + bytes(record.positions) + bytes((record.scanning_resolution,))
            + record.width.to_bytes(2, "big") + record.height.to_bytes(2, "big")
            + bytes((record.compression,)) + record.image)
