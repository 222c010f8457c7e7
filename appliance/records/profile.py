"""Agency profiles: what a receiving agency expects in a booking transaction.

ANSI/NIST-ITL fixes the record layout; the receiving agency (the FBI's EBTS, a state's AFIS)
decides the type of transaction, the destination, which Type-2 descriptive fields are mandatory
and which prints a tenprint must hold. A ``Profile`` captures those choices so the builder and
the validator read them from one place. ``EBTS_CAR``, the FBI's criminal tenprint submission
(answer required), is the default.

Type-2 fields for CAR follow the FBI EBTS field list for criminal tenprint submissions (RET, NAM,
POB, DOB, SEX, RAC, HGT, WGT, EYE, HAI, DPR, DOA, ASL mandatory); check the edition the agency
certifies against before relying on it. Fields the station cannot know (place of birth, race,
height ...) come from the agency's records system through ``build_transaction(type2=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from appliance.domain import SLAP_FINGERS, Annotation, Booking, Position
from appliance.phrase import Phrase
from appliance.records.errors import ProfileError

#: A Type-2 value: text, or subfields of information items.
Type2Value = str | list[list[str]]


@dataclass(frozen=True, slots=True)
class Type2Field:
    """One Type-2 field the profile knows.

    ``source`` fills it from the booking and ``default`` is the fixed value used when neither the
    caller nor the source gives one.
    """

    number: int
    mnemonic: str
    mandatory: bool = False
    source: Callable[[Booking], Type2Value | None] | None = None
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """An agency's rules for a booking transaction."""

    name: str
    tot: str
    destination_agency: str
    version: str = "0500"
    domain: tuple[str, str] | None = ("NORAM", "")
    priority: int | None = None
    type2_fields: tuple[Type2Field, ...] = ()
    #: Rolled positions that must each have a Type-14 record unless annotated XX/UP.
    rolled_positions: tuple[Position, ...] = tuple(Position(p) for p in range(1, 11))
    #: Plain slap positions that must be present (fingers annotated XX/UP may be missing).
    slap_positions: tuple[Position, ...] = (Position.PLAIN_RIGHT_FOUR, Position.PLAIN_LEFT_FOUR)
    #: Plain thumbs: either a two-thumb slap (15) or both single thumbs (11 and 12).
    require_plain_thumbs: bool = True
    #: Lowest acceptable scanning resolution of a fingerprint image, pixels per inch.
    min_ppi: int = 490
    compression: str = "WSQ20"
    #: 9.127 capture equipment compliance ("APPF" = certified to EBTS Appendix F, else "NONE").
    equipment_compliance: str = "APPF"
    #: 14.024 FQM algorithm: CBEFF vendor (ISO/IEC JTC 1 SC 37 = 0x0101) and NFIQ 2 product code.
    nfiq2_vendor: int = 0x0101
    nfiq2_product: int = 0x0038
    #: 2.009 OCA, where the booking number goes: its longest length and the characters allowed
    #: (printable ASCII: the station's 1.015 declares no other character set).
    booking_number_max: int = 20
    booking_number_chars: frozenset[str] = frozenset(chr(c) for c in range(0x20, 0x7F))

    def type2_field(self, number: int) -> Type2Field | None:
        """The profile's rule for a Type-2 field, if it has one."""
        return next((f for f in self.type2_fields if f.number == number), None)


# -- sources: how a Type-2 field is filled from the booking ----------------------------------


def _name(booking: Booking) -> str | None:
    subject = booking.subject
    if not subject.last_name:
        return None
    return f"{subject.last_name.upper()},{subject.first_name.upper()}".rstrip(",")


def _date_of_birth(booking: Booking) -> str | None:
    digits = "".join(ch for ch in booking.subject.date_of_birth if ch.isdigit())
    return digits if len(digits) == 8 else None


def _sex(booking: Booking) -> str | None:
    code = booking.subject.sex.strip()[:1].upper()
    return code if code in {"M", "F", "X", "U"} else None


def _date_printed(booking: Booking) -> str:
    first = min((imp.captured_at for imp in booking.impressions), default=booking.created_at)
    return first.strftime("%Y%m%d")


def _case_number(booking: Booking) -> str | None:
    return booking.booking_number or None


def amputations(booking: Booking) -> list[list[str]] | None:
    """2.084 AMP: one FGP<US>AMPCD subfield per finger annotated XX or UP, in position order."""
    marks = sorted((int(pos), mark) for pos, mark in booking.annotations.items()
                   if 1 <= int(pos) <= 10)
    if not marks:
        return None
    return [[f"{pos:02d}", Annotation(mark).value] for pos, mark in marks]


EBTS_CAR_TYPE2 = (
    Type2Field(5, "RET", mandatory=True, default="Y"),
    Type2Field(9, "OCA", source=_case_number),
    Type2Field(18, "NAM", mandatory=True, source=_name),
    Type2Field(20, "POB", mandatory=True),
    Type2Field(22, "DOB", mandatory=True, source=_date_of_birth),
    Type2Field(24, "SEX", mandatory=True, source=_sex),
    Type2Field(25, "RAC", mandatory=True),
    Type2Field(27, "HGT", mandatory=True),
    Type2Field(29, "WGT", mandatory=True),
    Type2Field(31, "EYE", mandatory=True),
    Type2Field(32, "HAI", mandatory=True),
    Type2Field(38, "DPR", mandatory=True, source=_date_printed),
    Type2Field(45, "DOA", mandatory=True),
    Type2Field(47, "ASL", mandatory=True),
    Type2Field(73, "CRI"),
    Type2Field(84, "AMP", source=amputations),
)

#: FBI EBTS criminal tenprint submission (answer required), sent to CJIS.
EBTS_CAR = Profile(
    name="ebts-car",
    tot="CAR",
    destination_agency="WVIAFIS0Z",
    type2_fields=EBTS_CAR_TYPE2,
)

#: The same tenprint rules with only the Type-2 fields the station itself knows: for a
#: local or state AFIS that takes descriptors from its own records system, and for the demo.
LOCAL_TENPRINT = Profile(
    name="local-tenprint",
    tot="CAR",
    destination_agency="LOCALAFIS",
    type2_fields=(
        Type2Field(9, "OCA", source=_case_number),
        Type2Field(18, "NAM", source=_name),
        Type2Field(22, "DOB", source=_date_of_birth),
        Type2Field(24, "SEX", source=_sex),
        Type2Field(38, "DPR", mandatory=True, source=_date_printed),
        Type2Field(84, "AMP", source=amputations),
    ),
)

#: Identification flats: the three slaps only (no rolled prints), for stations configured with
#: the ``flats`` capture sequence and an AFIS that accepts flat-only submissions.
LOCAL_FLATS = Profile(
    name="local-flats",
    tot="CAR",
    destination_agency="LOCALAFIS",
    type2_fields=LOCAL_TENPRINT.type2_fields,
    rolled_positions=(),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (EBTS_CAR, LOCAL_TENPRINT, LOCAL_FLATS)}
DEFAULT_PROFILE = EBTS_CAR


def get_profile(name: str | None) -> Profile:
    """The profile registered under ``name``; the default (EBTS CAR) for ``None``."""
    if name is None:
        return DEFAULT_PROFILE
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ProfileError(f"unknown profile {name!r}; known profiles: {known}") from None


def booking_number_problems(profile: Profile, number: str) -> list[str]:
    """Why ``number`` cannot go into 2.009 OCA under ``profile``, in plain words (empty: it can).

    Checked when the officer types it, so that submit never refuses a booking for its number.
    """
    if not number.strip():
        return [Phrase("Type the booking number.", "number_empty")]
    problems: list[str] = []
    if len(number) > profile.booking_number_max:
        problems.append(Phrase(
            f"A booking number has at most {profile.booking_number_max} characters; "
            f"this one has {len(number)}.", "number_too_long",
            max=profile.booking_number_max, length=len(number)))
    refused = sorted({ch for ch in number if ch not in profile.booking_number_chars})
    if refused:
        shown = " ".join(repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" for ch in refused)
        problems.append(Phrase(f"Only letters A-Z, digits, spaces and ASCII signs can be sent; "
                               f"not {shown}.", "number_chars", chars=shown))
    return problems


def missing_prints(
    profile: Profile,
    present: Iterable[Position | int],
    annotations: Mapping[Position, Annotation | str],
) -> list[str]:
    """What the profile requires and the booking lacks, one plain-language line per gap.

    A rolled finger may be absent when it is annotated XX or UP; a slap or the plain thumbs may
    be absent only when every finger they would show is annotated.
    """
    have = {int(p) for p in present}
    marked = {int(p) for p in annotations}
    gaps = []
    for position in profile.rolled_positions:
        if int(position) not in have and int(position) not in marked:
            gaps.append(f"a rolled {position.label} ({int(position)}) or an XX/UP annotation")
    for slap in profile.slap_positions:
        fingers = {int(f) for f in SLAP_FINGERS[slap]}
        if int(slap) not in have and not fingers <= marked:
            gaps.append(f"the {slap.label} slap ({int(slap)})")
    if profile.require_plain_thumbs:
        thumbs = {int(Position.RIGHT_THUMB), int(Position.LEFT_THUMB)}
        both_single = {int(Position.PLAIN_RIGHT_THUMB), int(Position.PLAIN_LEFT_THUMB)} <= have
        if int(Position.PLAIN_THUMBS) not in have and not both_single and not thumbs <= marked:
            gaps.append("plain thumbs: a two-thumb slap (15) or both single thumbs (11, 12)")
    return gaps
