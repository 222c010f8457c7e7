"""The subject's Type-2 descriptors as the officer fills them: which fields, of what kind.

The kiosk's subject form is generated from the agency profile's Type-2 fields: every field
the profile lists that the station does not fill itself, with its mandatory mark, its kind
(a name, a date, height, weight, a code from a table, or text) and, for code fields, the
codes and their words. :func:`check_descriptors` says what is wrong with a value as the
officer types it, so that submit never refuses a booking for a descriptor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from appliance.phrase import Phrase
from appliance.records.profile import Profile

#: Fields the station fills itself (retention, the booking number, date printed, XX/UP).
STATION_FILLED = frozenset({"RET", "OCA", "DPR", "AMP"})

#: EBTS code tables of the descriptors with one (Appendix C of the EBTS).
CODE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "SEX": (("M", "male"), ("F", "female"), ("X", "unknown"), ("U", "unreported")),
    "RAC": (("A", "Asian or Pacific Islander"), ("B", "Black"),
            ("I", "American Indian or Alaskan Native"), ("W", "White"), ("U", "unknown")),
    "EYE": (("BLK", "black"), ("BLU", "blue"), ("BRO", "brown"), ("GRN", "green"),
            ("GRY", "gray"), ("HAZ", "hazel"), ("MAR", "maroon"), ("MUL", "multicoloured"),
            ("PNK", "pink"), ("XXX", "unknown")),
    "HAI": (("BAL", "bald"), ("BLK", "black"), ("BLN", "blond"), ("BRO", "brown"),
            ("GRY", "gray"), ("RED", "red"), ("SDY", "sandy"), ("WHI", "white"),
            ("XXX", "unknown")),
}
LABELS = {
    "NAM": "Name (last, first)", "POB": "Place of birth (state or country code)",
    "DOB": "Date of birth", "SEX": "Sex", "RAC": "Race", "HGT": "Height (feet and inches)",
    "WGT": "Weight (pounds)", "EYE": "Eye colour", "HAI": "Hair colour", "DOA": "Date of arrest",
    "ASL": "Offense", "CRI": "Controlling agency (ORI)",
}
KINDS = {"NAM": "name", "DOB": "date", "DOA": "date", "HGT": "height", "WGT": "weight"}
NAME = re.compile(r"[A-Z][A-Z' -]*,[A-Z][A-Z' -]*")
TEXT = re.compile(r"[ -~]+")  # printable ASCII: 1.015 declares no other character set
#: Longest value of a free text descriptor.
TEXT_MAX = 50


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the subject form."""

    number: int
    mnemonic: str
    label: str
    mandatory: bool
    kind: str  # name | date | height | weight | code | text
    codes: tuple[tuple[str, str], ...] = ()


def subject_form(profile: Profile) -> list[FormField]:
    """The fields the officer fills for ``profile``, in the profile's order."""
    return [
        FormField(f.number, f.mnemonic, LABELS.get(f.mnemonic, f.mnemonic), f.mandatory,
                  "code" if f.mnemonic in CODE_TABLES else KINDS.get(f.mnemonic, "text"),
                  CODE_TABLES.get(f.mnemonic, ()))
        for f in profile.type2_fields if f.mnemonic not in STATION_FILLED
    ]


def check_descriptors(profile: Profile, values: dict[str, str], *, complete: bool
                      ) -> dict[str, str]:
    """What is wrong with each value, by mnemonic (empty: nothing).

    ``complete`` also names the mandatory fields left empty (at submit, not while typing).
    """
    problems: dict[str, str] = {}
    for field in subject_form(profile):
        value = values.get(field.mnemonic, "").strip()
        if not value:
            if complete and field.mandatory:
                problems[field.mnemonic] = Phrase("Required.", "required")
            continue
        problem = _problem(field, value)
        if problem:
            problems[field.mnemonic] = problem
    return problems


def _problem(field: FormField, value: str) -> Phrase | None:
    if field.kind == "code":
        if value in {c for c, _ in field.codes}:
            return None
        return Phrase("Pick one of the list.", "pick_list")
    if field.kind == "date":
        return _date_problem(value)
    if field.kind == "height":
        if re.fullmatch(r"[3-8](0\d|1[01])", value):
            return None
        return Phrase("Feet and inches as three digits, e.g. 510 for 5 ft 10 in.", "height")
    if field.kind == "weight":
        if re.fullmatch(r"\d{2,3}", value) and 50 <= int(value) <= 499:
            return None
        return Phrase("Pounds, 50 to 499.", "weight")
    if not TEXT.fullmatch(value) or len(value) > TEXT_MAX:
        return Phrase(f"Letters, digits and ASCII signs only, at most {TEXT_MAX}.", "ascii_text",
                      max=TEXT_MAX)
    if field.kind == "name" and not NAME.fullmatch(value.upper()):
        return Phrase("Last name, a comma, then the first name: SMITH,JOHN.", "name")
    return None


def _date_problem(value: str) -> Phrase | None:
    if not re.fullmatch(r"\d{8}", value):
        return Phrase("A date as YYYYMMDD, e.g. 19800131.", "date_format")
    try:
        day = date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return Phrase("No such date.", "no_such_date")
    if day > date.today() or day.year < 1900:
        return Phrase("A date between 1900 and today.", "date_range")
    return None
