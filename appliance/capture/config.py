"""The capture section of the configuration: which sequence the officer follows."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from appliance.strict import Strict


class CaptureSection(Strict):
    """The capture sequence."""

    sequence: Literal["tenprint", "flats"] = Field(
        "tenprint", description="tenprint: ten rolled + slaps; flats: slaps only."
    )
    auto_capture: bool = Field(
        True, description="Capture by itself once the live checks hold for "
        "quality.auto_capture_frames preview frames in a row (the Capture button still works)."
    )
    subject_lookup_dir: Path | None = Field(
        None, description="Folder where the agency's booking system drops one JSON file per "
        "booking, named after the booking number (BK-1.json: {\"NAM\": \"DOE,JOHN\", ...}); the "
        "kiosk's Look up button fills the subject form from it. Unset: no look-up."
    )
