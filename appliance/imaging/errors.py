"""The imaging layer's errors: one branch of the station's tree, under ``ImagingError``.

Image problems (a blank frame, a smudge, a missing finger) are verdicts, never exceptions: the
caller gets a report it can show. These classes are for faults the station itself must fix: no
NFIQ 2 binding, a matcher that cannot run, a call that breaks the module's contract.
"""

from __future__ import annotations

from appliance.errors import ImagingError


class QualityBackendUnavailable(ImagingError):
    """No NFIQ 2 binding imports on this machine (nbis-python or nbis-py)."""


class MatcherUnavailable(ImagingError):
    """The minutiae matcher (BOZORTH3 through the NBIS binding) cannot run."""


class TemplateError(ImagingError):
    """A minutiae template could not be built or read by the matcher."""
