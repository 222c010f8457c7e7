"""Build the ANSI/NIST-ITL transaction of a finished booking.

One call turns a ``Booking`` into the bytes the station stores and sends: Type-1 (transaction
information), Type-2 (descriptive text, per the agency profile), one Type-14 per impression
(WSQ at 0.75 bpp) and, when templates are given, one Type-9 (INCITS 378 block) per finger,
sharing the IDC of the Type-14 image its minutiae were found in.

Choices the standard leaves open, made here:

* Records follow Type-1, Type-2, the Type-14 images in position order (rolled 1..10, then the
  plain codes 11..15), then the Type-9 records; IDCs are two digits, 00 for Type-2, 01.. for
  images.
* A finger annotated XX/UP has no rolled Type-14 record; it appears in 2.084 AMP and, inside
  the slap that should have held it, in 14.018 AMP (as in NIST's ``type-14-amp`` reference).
* 14.021 SEG is written only when the caller passes real finger boxes for a slap. Without them
  the field is left out rather than filled with the whole image, because a receiver crops the
  fingers by these boxes and a whole-image box would hand it four fingers as one.
* Quality goes in 14.024 FQM as NFIQ 2 (0..100) with the profile's algorithm ids. 14.022 NQM is
  NFIQ 1 (1..5), which the station does not compute, so it is not written.
* 1.011 NSR and 1.012 NTR are 00.00: the transaction carries no Type-4..7 records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from appliance.domain import (
    SLAP_FINGERS,
    Annotation,
    Booking,
    Impression,
    Minutia,
    Position,
)
from appliance.records.errors import RecordError, TransactionError
from appliance.records.profile import DEFAULT_PROFILE, Profile, missing_prints
from appliance.records.template import decode_ansi378
from appliance.records.transaction import (
    TaggedRecord,
    Transaction,
    tag,
    write_transaction,
)
from appliance.records.type9 import m1_record
from appliance.records.wsq import encode_wsq

#: Compression code of 14.011 for WSQ (ANSI/NIST-ITL 1-2011 Table 15).
CGA_WSQ = "WSQ20"
#: 14.008 SLC: the scale unit is pixels per inch.
SLC_PPI = 1


@dataclass(frozen=True, slots=True)
class FingerSegment:
    """Where one finger lies in a slap image (14.021 SEG), with its own NFIQ 2 score if known."""

    position: Position
    left: int
    right: int
    top: int
    bottom: int
    nfiq2: int | None = None


Template = Sequence[Minutia] | bytes


def build_transaction(
    booking: Booking,
    *,
    profile: Profile = DEFAULT_PROFILE,
    ori: str,
    tcn: str,
    templates: Mapping[Position, Template] | None = None,
    segments: Mapping[Position, Sequence[FingerSegment]] | None = None,
    type2: Mapping[int, str | list[list[str]]] | None = None,
    now: datetime | None = None,
    encoded: Mapping[str, bytes] | None = None,
) -> bytes:
    """The booking's transaction in the traditional encoding.

    ``templates`` maps a finger position to its minutiae (or an ANSI INCITS 378 record) in the
    pixel coordinates of that position's impression; ``segments`` maps a slap position to its
    finger boxes; ``type2`` supplies Type-2 fields by number (e.g. ``{20: "NY", 25: "W"}``),
    overriding what the profile derives from the booking; ``now`` stamps 1.005 DAT and 1.014
    GMT (default: the current UTC time); ``encoded`` holds WSQ codestreams already made from
    impressions' images, by impression id (the station encodes each print when it is accepted),
    the others are encoded here. Raises ``TransactionError`` naming the field at fault.
    """
    return write_transaction(
        assemble_transaction(booking, profile=profile, ori=ori, tcn=tcn, templates=templates,
                             segments=segments, type2=type2, now=now, encoded=encoded)
    )


def assemble_transaction(
    booking: Booking,
    *,
    profile: Profile = DEFAULT_PROFILE,
    ori: str,
    tcn: str,
    templates: Mapping[Position, Template] | None = None,
    segments: Mapping[Position, Sequence[FingerSegment]] | None = None,
    type2: Mapping[int, str | list[list[str]]] | None = None,
    now: datetime | None = None,
    encoded: Mapping[str, bytes] | None = None,
) -> Transaction:
    """The same transaction as records, before serialisation (see ``build_transaction``)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    for value, field in ((ori, "1.008"), (tcn, "1.009")):
        if not value or not value.isascii() or not value.isprintable():
            raise TransactionError("must be non-empty printable ASCII", record_type=1,
                                   field=field)
    impressions = _impressions_in_order(booking)
    gaps = missing_prints(profile, {imp.position for imp in impressions}, booking.annotations)
    if gaps:
        raise TransactionError(f"the {profile.name} profile needs " + "; ".join(gaps),
                               record_type=14, field="14.013")

    records: list = [_type1(profile, ori, tcn, now), _type2(booking, profile, type2 or {})]
    idc_of: dict[Position, int] = {}
    for impression in impressions:
        index = len(records)
        idc_of[impression.position] = index - 1
        records.append(_type14(impression, booking, profile, ori, index, index - 1,
                               (segments or {}).get(impression.position),
                               (encoded or {}).get(impression.impression_id)))
    by_position = {imp.position: imp for imp in impressions}
    for position, template in sorted((templates or {}).items()):
        position = Position(position)
        if position not in by_position:
            raise TransactionError(f"template for {position.label} but no impression of that "
                                   f"position", record_type=9, field="9.134")
        records.append(_type9(template, by_position[position], idc_of[position], profile))
    return Transaction(records)


# -- records ----------------------------------------------------------------------------------


def _type1(profile: Profile, ori: str, tcn: str, now: datetime) -> TaggedRecord:
    record = TaggedRecord(1)
    record.set(2, profile.version)
    record.set(3, [["1", "0"]])  # recomputed by the writer from the records present
    record.set(4, profile.tot)
    record.set(5, now.strftime("%Y%m%d"))
    if profile.priority is not None:
        record.set(6, profile.priority)
    record.set(7, profile.destination_agency)
    record.set(8, ori)
    record.set(9, tcn)
    record.set(11, "00.00")
    record.set(12, "00.00")
    if profile.domain is not None:
        record.set(13, [list(profile.domain)])
    record.set(14, now.strftime("%Y%m%d%H%M%SZ"))
    return record


def _type2(booking: Booking, profile: Profile, supplied: Mapping[int, object]) -> TaggedRecord:
    values: dict[int, object] = {}
    for rule in profile.type2_fields:
        if rule.number in supplied:
            value = supplied[rule.number]
        elif rule.source is not None:
            value = rule.source(booking)
        else:
            value = rule.default
        if value not in (None, "", []):
            values[rule.number] = value
    for number, value in supplied.items():
        if number in (1, 2):
            raise TransactionError("LEN and IDC are set by the builder", record_type=2,
                                   field=tag(2, number))
        values.setdefault(int(number), value)
    missing = [f"{tag(2, f.number)} {f.mnemonic}" for f in profile.type2_fields
               if f.mandatory and f.number not in values]
    if missing:
        raise TransactionError(f"mandatory for {profile.name} and not supplied: "
                               + ", ".join(missing), record_index=1, record_type=2,
                               field=tag(2, min(f.number for f in profile.type2_fields
                                                if f.mandatory and f.number not in values)))
    record = TaggedRecord(2)
    record.set(2, "00")
    for number in sorted(values):
        record.set(number, values[number])  # type: ignore[arg-type]
    return record


def _type14(
    impression: Impression,
    booking: Booking,
    profile: Profile,
    ori: str,
    index: int,
    idc: int,
    segments: Sequence[FingerSegment] | None,
    encoded: bytes | None = None,
) -> TaggedRecord:
    here = {"record_index": index, "record_type": 14}
    image = impression.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2:
        raise TransactionError(f"{impression.position.label}: image must be a 2-D uint8 array",
                               field="14.999", **here)
    if impression.ppi < profile.min_ppi:
        raise TransactionError(f"{impression.position.label}: {impression.ppi} ppi is below the "
                               f"{profile.min_ppi} ppi the {profile.name} profile accepts",
                               field="14.009", **here)
    try:
        data = encoded if encoded is not None else encode_wsq(image, ppi=impression.ppi)
    except RecordError as exc:
        raise TransactionError(f"{impression.position.label}: {exc}", field="14.999",
                               **here) from exc
    height, width = image.shape
    record = TaggedRecord(14)
    record.set(2, f"{idc:02d}")
    record.set(3, int(impression.impression_type))
    record.set(4, ori)
    record.set(5, impression.captured_at.astimezone(UTC).strftime("%Y%m%d"))
    record.set(6, width)
    record.set(7, height)
    record.set(8, SLC_PPI)
    record.set(9, impression.ppi)
    record.set(10, impression.ppi)
    record.set(11, CGA_WSQ)
    record.set(12, 8)
    record.set(13, int(impression.position))
    fingers = SLAP_FINGERS.get(impression.position, ())
    marked = [[str(int(f)), Annotation(booking.annotations[f]).value]
              for f in sorted(fingers) if f in booking.annotations]
    if marked:
        record.set(18, marked)
    if segments:
        record.set(21, _segment_items(segments, impression, width, height, here))
    quality = _quality_items(impression, segments, profile)
    if quality:
        record.set(24, quality)
    record.set(999, data)
    return record


def _segment_items(
    segments: Sequence[FingerSegment], impression: Impression, width: int, height: int,
    here: dict,
) -> list[list[str | int]]:
    allowed = set(SLAP_FINGERS.get(impression.position, ()))
    items: list[list[str | int]] = []
    for seg in sorted(segments, key=lambda s: int(s.position)):
        if seg.position not in allowed:
            raise TransactionError(f"segment for {Position(seg.position).label} in the "
                                   f"{impression.position.label} image", field="14.021", **here)
        if not (0 <= seg.left < seg.right < width and 0 <= seg.top < seg.bottom < height):
            raise TransactionError(f"box of {Position(seg.position).label} lies outside the "
                                   f"{width}x{height} image", field="14.021", **here)
        items.append([int(seg.position), seg.left, seg.right, seg.top, seg.bottom])
    return items


def _quality_items(
    impression: Impression, segments: Sequence[FingerSegment] | None, profile: Profile
) -> list[list[str | int]]:
    vendor, product = f"{profile.nfiq2_vendor:04X}", profile.nfiq2_product
    if impression.position.is_slap:
        return [[int(s.position), s.nfiq2, vendor, product]
                for s in sorted(segments or (), key=lambda s: int(s.position))
                if s.nfiq2 is not None]
    nfiq2 = impression.quality.nfiq2 if impression.quality else None
    if nfiq2 is None:
        return []
    if not 0 <= nfiq2 <= 100:
        raise TransactionError(f"NFIQ 2 score {nfiq2} is not 0..100", record_type=14,
                               field="14.024")
    return [[int(impression.position), nfiq2, vendor, product]]


def _type9(template: Template, impression: Impression, idc: int, profile: Profile) -> TaggedRecord:
    if isinstance(template, bytes | bytearray):
        view = decode_ansi378(bytes(template)).views
        if len(view) != 1:
            raise TransactionError("an ANSI 378 template for one position must hold one view",
                                   record_type=9, field="9.137")
        minutiae: Sequence[Minutia] = view[0].minutiae
    else:
        minutiae = template
    height, width = impression.image.shape
    nfiq2 = impression.quality.nfiq2 if impression.quality else None
    return m1_record(
        minutiae, idc=idc, impression_type=int(impression.impression_type),
        position=int(impression.position), width=width, height=height, ppi=impression.ppi,
        finger_quality=nfiq2, quality_vendor=profile.nfiq2_vendor,
        quality_product=profile.nfiq2_product,
        equipment_compliance=profile.equipment_compliance,
    )


def _impressions_in_order(booking: Booking) -> list[Impression]:
    seen: dict[Position, Impression] = {}
    for impression in booking.impressions:
        position = Position(impression.position)
        if position in seen:
            raise TransactionError(f"two impressions for {position.label}: keep only the "
                                   f"accepted take", record_type=14, field="14.013")
        if 1 <= position <= 10 and position in booking.annotations:
            raise TransactionError(f"{position.label} is annotated "
                                   f"{Annotation(booking.annotations[position]).value} but has "
                                   f"a rolled impression", record_type=14, field="14.018")
        seen[position] = impression
    return [seen[p] for p in sorted(seen)]
