"""Type-9 minutiae records carrying the INCITS 378 block (fields 9.126-9.150).

ANSI/NIST-ITL 1-2011 offers several ways to put minutiae in a Type-9 record: the legacy
"standard" fields 9.005-9.012, the FBI IAFIS native fields 9.013-9.030, vendor blocks, the
INCITS 378 block 9.126-9.150, and the Extended Feature Set 9.300+. The station writes the INCITS
378 block: it is the ASCII form of the same ANSI INCITS 378 template the station already produces
(``appliance.records.template``), its minutia convention is fully specified (unlike the IAFIS
native fields, whose encoding follows the FBI's own matcher), and NIST's reference transactions
(``type-9-*-m1.an2``) and NBIS's ``an2k`` tools read and write it. EFS is far richer than a
minutiae extractor's output and is read mainly by latent examiners' tools.

Fields written (``9.004`` FMT is ``U``, "other than the legacy standard fields", as in NIST's
references)::

    9.126 CBI  CBEFF format owner 27 (INCITS M1) ~ format type 513 (INCITS 378) ~ product id
    9.127 CEI  equipment compliance (APPF / NONE) ~ capture equipment id
    9.128 HLL, 9.129 VLL   image size in pixels
    9.130 SLC  2 (pixels per centimetre); 9.131 THPS, 9.132 TVPS (197 for 500 ppi)
    9.133 FVW  finger view number; 9.134 FGP finger position (two digits)
    9.135 FQD  finger quality ~ quality algorithm vendor (4 hex) ~ product code (optional)
    9.136 NOM  number of minutiae
    9.137 MRC  per minutia: index (3 digits) ~ x ~ y ~ angle in 2-degree units (0..179)
               ~ type (0 other, 1 ridge ending, 2 bifurcation) ~ quality (0..100)

Ridge counts (9.138), cores and deltas (9.139-9.141) are left out: the station's extractor does
not produce them.
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.domain import Minutia
from appliance.records.errors import TemplateError, TransactionError
from appliance.records.template import (
    CBEFF_OWNER_INCITS_M1,
    CBEFF_TYPE_INCITS_378,
    MinutiaTypeCode,
    TemplateFormat,
    minutia_from_units,
    minutia_units,
    ppi_to_ppcm,
)
from appliance.records.transaction import TaggedRecord

M1_FIRST_FIELD, M1_LAST_FIELD = 126, 150
_ANSI = TemplateFormat.ANSI_378_2004


def m1_record(
    minutiae: Sequence[Minutia],
    *,
    idc: int,
    impression_type: int,
    position: int,
    width: int,
    height: int,
    ppi: int,
    finger_quality: int | None = None,
    quality_vendor: int = 0,
    quality_product: int = 0,
    equipment_compliance: str = "NONE",
    view_number: int = 0,
) -> TaggedRecord:
    """A Type-9 record holding ``minutiae`` (pixel coordinates of the image ``idc`` refers to)."""
    if len(minutiae) > 255:
        raise TransactionError("more than 255 minutiae", record_type=9, field="9.136")
    resolution = ppi_to_ppcm(ppi)
    record = TaggedRecord(9)
    record.set(2, f"{idc:02d}")
    record.set(3, impression_type)
    record.set(4, "U")
    record.set(126, [[CBEFF_OWNER_INCITS_M1, CBEFF_TYPE_INCITS_378, "0"]])
    record.set(127, [[equipment_compliance, "0"]])
    record.set(128, width)
    record.set(129, height)
    record.set(130, 2)
    record.set(131, resolution)
    record.set(132, resolution)
    record.set(133, view_number)
    record.set(134, f"{position:02d}")
    if finger_quality is not None:
        record.set(135, [[finger_quality, f"{quality_vendor:04X}", quality_product]])
    record.set(136, len(minutiae))
    items = []
    for n, minutia in enumerate(minutiae, 1):
        try:
            code, x, y, angle, quality = minutia_units(minutia, _ANSI)
        except TemplateError as exc:
            raise TransactionError(f"minutia {n}: {exc}", record_type=9, field="9.137") from exc
        if not (0 <= x < width and 0 <= y < height and 0 <= quality <= 100):
            raise TransactionError(f"minutia {n} at ({x}, {y}) quality {quality} does not fit "
                                   f"the {width}x{height} image", record_type=9, field="9.137")
        items.append([f"{n:03d}", x, y, angle, code, quality])
    if items:
        record.set(137, items)
    return record


def read_m1_minutiae(record: TaggedRecord) -> list[Minutia]:
    """The minutiae of a Type-9 record's INCITS 378 block (9.137), in file order."""
    minutiae = []
    for n, items in enumerate(record.subfields(137), 1):
        try:
            if len(items) != 6:
                raise ValueError(f"{len(items)} information items instead of 6")
            _index, x, y, angle, code, quality = (int(v) for v in items)
            if not (0 <= angle < _ANSI.angle_steps and 0 <= quality <= 100):
                raise ValueError("angle or quality out of range")
            minutiae.append(minutia_from_units(MinutiaTypeCode(code), x, y, angle, quality,
                                                 _ANSI))
        except ValueError as exc:
            raise TransactionError(f"minutia {n}: {exc}", record_type=9, field="9.137") from exc
    return minutiae


def has_m1_block(record: TaggedRecord) -> bool:
    """True when the record uses any field of the INCITS 378 block."""
    return any(M1_FIRST_FIELD <= n <= M1_LAST_FIELD for n in record.fields)
