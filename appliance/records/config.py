"""The records section of the configuration: which ANSI/NIST-ITL profile transactions follow."""

from __future__ import annotations

from pydantic import Field, field_validator

from appliance.records.profile import PROFILES
from appliance.strict import Strict


class RecordsSection(Strict):
    """The transaction the station builds."""

    profile: str = Field(
        "ebts-car",
        description="ANSI/NIST-ITL profile: 'ebts-car' (FBI criminal tenprint), "
        "'local-tenprint' (only the Type-2 fields the station knows) or 'local-flats' (slaps "
        "only, for the 'flats' capture sequence).",
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown profile; known: {', '.join(sorted(PROFILES))}")
        return value
