"""The subject form's values and the booking's :class:`Subject`, one from the other.

Name, date of birth and sex live in the subject's own fields (the profile's sources read them);
every other descriptor is kept by its Type-2 field number and handed to the builder as is.
"""

from __future__ import annotations

from appliance.domain import Subject
from appliance.records.descriptors import subject_form
from appliance.records.profile import Profile

OWN_FIELDS = frozenset({"NAM", "DOB", "SEX"})


def subject_from_form(profile: Profile, values: dict[str, str]) -> Subject:
    """The subject described by the form's (checked) values."""
    clean = {k: v.strip() for k, v in values.items() if v and v.strip()}
    last, _, first = clean.get("NAM", "").upper().partition(",")
    return Subject(
        last_name=last.strip(), first_name=first.strip(),
        date_of_birth=clean.get("DOB", ""), sex=clean.get("SEX", ""),
        descriptors={f.number: clean[f.mnemonic].upper() for f in subject_form(profile)
                     if f.mnemonic not in OWN_FIELDS and f.mnemonic in clean},
    )


def form_from_subject(profile: Profile, subject: Subject) -> dict[str, str]:
    """The form's values for ``subject`` (empty fields left out)."""
    name = f"{subject.last_name},{subject.first_name}" if subject.last_name else ""
    values = {"NAM": name, "DOB": subject.date_of_birth, "SEX": subject.sex}
    for field in subject_form(profile):
        if field.number in subject.descriptors:
            values[field.mnemonic] = subject.descriptors[field.number]
    return {k: v for k, v in values.items() if v}
