"""Print quality on the spot: live checks, NFIQ 2, slap segmentation, sequence check, gates.

Modules, in the order a booking meets them:

- :mod:`.live`: per-frame checks on the preview (numpy only, a few ms a frame) and auto-capture;
- :mod:`.segmentation` (with :mod:`.fingertips`): slap fingertips, numbered, cropped, 14.021;
- :mod:`.nfiq2`: NFIQ 2 through NIST's code in the NBIS binding, with officer feedback;
- :mod:`.matching`: MINDTCT + BOZORTH3 sequence and duplicate checks (extractor pluggable);
- :mod:`.gate` and :mod:`.config`: per-position thresholds, retakes and overrides;
- :mod:`.report`: the booking's quality report for kiosk, transaction and central.

Imports here are light: the NBIS binding loads when an :class:`NbisEngine` is built (once, at
start-up); :class:`QualityAssessor`, :class:`NbisMinutiae` and :class:`Bozorth3` share it.
"""

from appliance.imaging.binding import NbisEngine
from appliance.imaging.config import QualityConfig
from appliance.imaging.errors import MatcherUnavailable, QualityBackendUnavailable, TemplateError
from appliance.imaging.feedback import Advice
from appliance.imaging.gate import GateVerdict, QualityGate
from appliance.imaging.live import AutoCapture, AutoCaptureDecision, LiveChecker, LiveVerdict
from appliance.imaging.matching import (
    Bozorth3,
    Duplicate,
    NbisMinutiae,
    SequenceReport,
    SequenceResult,
    SequenceStatus,
    check_duplicates,
    check_sequence,
)
from appliance.imaging.nfiq2 import QualityAssessor, backend_name, load_backend
from appliance.imaging.report import booking_quality_report
from appliance.imaging.segmentation import (
    FingerBox,
    SegmentedFinger,
    SlapSegmentation,
    segment_slap,
)

__all__ = [
    "Advice",
    "AutoCapture",
    "AutoCaptureDecision",
    "Bozorth3",
    "Duplicate",
    "FingerBox",
    "GateVerdict",
    "LiveChecker",
    "LiveVerdict",
    "MatcherUnavailable",
    "NbisEngine",
    "NbisMinutiae",
    "QualityAssessor",
    "QualityBackendUnavailable",
    "QualityConfig",
    "QualityGate",
    "SegmentedFinger",
    "SequenceReport",
    "SequenceResult",
    "SequenceStatus",
    "SlapSegmentation",
    "TemplateError",
    "backend_name",
    "booking_quality_report",
    "check_duplicates",
    "check_sequence",
    "load_backend",
    "segment_slap",
]
