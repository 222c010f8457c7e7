"""NFIQ 2 (ISO/IEC 29794-4 reference implementation) on every plain finger, through NBIS.

NIST's NFIQ 2 runs through a maintained Python binding of NBIS, found and loaded once by
:mod:`appliance.imaging.binding` and named in every report (``backend_name()``). A
:class:`QualityAssessor` runs on an :class:`~appliance.imaging.binding.NbisEngine` (slow to
build: the station builds one at start-up and shares it with MINDTCT and BOZORTH3); each call
also yields MINDTCT's minutiae, which the sequence check reuses.

What NFIQ 2 cannot judge is caught before it is called, with a verdict the officer can act on:
unreadable arrays, resolutions far from 500 ppi (others are resampled first, and the report says
so), blank or black images, images too small to hold a fingertip, and images without ridges.
A binding failure (an exception, or score 0 with no features) is reported as a failure, never as
a score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from appliance.domain import Minutia, QualityReport
from appliance.imaging import measures
from appliance.imaging.binding import (
    BACKEND_DISTRIBUTIONS,
    Backend,
    NbisEngine,
    backend_name,
    domain_minutiae,
    encode_png,
    load_backend,
)
from appliance.imaging.errors import QualityBackendUnavailable
from appliance.imaging.feedback import Advice, centring_advice, darkness_advice
from appliance.imaging.resample import NATIVE_PPI, as_gray_u8, resample

log = logging.getLogger(__name__)

__all__ = [
    "BACKEND_DISTRIBUTIONS",
    "Assessment",
    "Backend",
    "QualityAssessor",
    "QualityBackendUnavailable",
    "backend_name",
    "encode_png",
    "final_advice",
    "load_backend",
]

#: Resolutions resampled to 500 ppi before NFIQ 2; anything outside is refused (a 125 ppi
#: preview, say, holds no ridge detail to judge).
MIN_PPI, MAX_PPI = 400, 1200
#: NFIQ 2 fails below about 200 px; a fingertip at 500 ppi is 250 px or more.
MIN_SIDE_PX = 200
#: NFIQ 2 is for one finger; larger images are slaps or whole platens to segment first.
MAX_SIDE_PX = 2000

# NFIQ 2 actionable feedback identifiers and their NIST thresholds (NFIQ2 ActionableQuality
# FeedbackThreshold): mean gray above 250 = empty, gray std below 1 = uniform, fewer than 5
# FingerJet minutiae, fewer than 50000 foreground pixels.
UNIFORM = "UniformImage"
EMPTY = "EmptyImageOrContrastTooLow"
MINUTIAE = "FingerprintImageWithMinutiae"
FOREGROUND = "SufficientFingerprintForeground"
ACTIONABLE_THRESHOLDS = {UNIFORM: 1.0, EMPTY: 250.0, MINUTIAE: 5.0, FOREGROUND: 50000.0}

#: NFIQ 2 features carried into the report beside the four actionable measures.
KEPT_FEATURES = (
    "FingerJetFX_MinutiaeCount",
    "FingerJetFX_MinCount_COMMinRect200x200",
    "ImgProcROIArea_Mean",
    "OCL_Bin10_Mean",
    "LCS_Bin10_Mean",
    "FDA_Bin10_Mean",
    "OF_Bin10_Mean",
    "Mu",
    "MMB",
)

#: Our own pre-check measures, in the report's ``measures`` under these names.
FOREGROUND_FRACTION = "foreground_fraction"
PRINT_MEAN_GRAY = "print_mean_gray"
PRINT_CONTRAST = "print_contrast"
RIDGE_BAND_FRACTION = "ridge_band_fraction"
RIDGE_COHERENCE = "ridge_coherence"
SOURCE_PPI = "source_ppi"
RESAMPLED_FROM_PPI = "resampled_from_ppi"

# Feedback thresholds, tuned on FVC2002 set B and the NIST reference prints (docs/quality.md).
LIGHT_PRINT, DARK_PRINT = 185.0, 80.0  # mean gray over the print
LOW_CONTRAST = 22.0  # gray std over the print
FEW_MINUTIAE = 12  # FingerJet minutiae
SMALL_FOREGROUND_PX = 60000  # NFIQ 2 foreground pixels
LOW_OCL = 0.42  # orientation certainty (0..1): smudged or blurred ridges
MIN_BAND_FRACTION, MIN_COHERENCE = 0.25, 0.12  # below either: not a fingerprint
OFF_CENTRE = 0.2  # print centre further than this (fraction of the image) from the middle
FEEDBACK_BELOW_SCORE = 60  # a print scoring at least this gets no generic advice
GOOD_SCORE = 75  # a print scoring at least this gets no advice at all


@dataclass(frozen=True, slots=True)
class Assessment:
    """A quality report and, when NFIQ 2 ran, MINDTCT's minutiae from the same call."""

    report: QualityReport
    minutiae: list[Minutia] | None  # in the assessed image's own pixels


class QualityAssessor:
    """NFIQ 2 for plain and rolled finger images; build once, call from the imaging thread."""

    def __init__(self, backend: Backend | None = None, *, engine: NbisEngine | None = None
                 ) -> None:
        self.engine = engine or NbisEngine(backend)
        self.backend = self.engine.backend

    @property
    def backend_name(self) -> str:
        """The binding named in every report."""
        return self.backend.name

    def assess(self, image: np.ndarray, ppi: float = NATIVE_PPI) -> QualityReport:
        """The quality report of one finger image; never raises for a bad image.

        ``image`` is uint8 with dark ridges on a light background, scanned at ``ppi``.
        """
        return self.assess_print(image, ppi).report

    def assess_print(self, image: np.ndarray, ppi: float = NATIVE_PPI) -> Assessment:
        """The quality report and, when NFIQ 2 ran, the minutiae MINDTCT found in that call.

        The minutiae are what :class:`appliance.imaging.matching.NbisMinutiae` would return
        for the same image: the sequence check reuses them instead of running MINDTCT again.
        """
        gray = as_gray_u8(image)
        if gray is None:
            return self._failed(Advice.UNREADABLE, {})
        found: dict[str, float] = {SOURCE_PPI: float(ppi)}
        if not MIN_PPI <= ppi <= MAX_PPI:
            return self._failed(Advice.WRONG_RESOLUTION, found)
        native = resample(gray, ppi)
        if native is not gray:
            found[RESAMPLED_FROM_PPI] = float(ppi)
        gray = native
        verdict = self._precheck(gray, found)
        if verdict is not None:
            return self._failed(verdict, found)
        try:
            result = self.engine.extract(gray)
            quality = result.quality()
        except self.engine.errors as exc:
            log.warning("NFIQ 2 failed on a %dx%d image: %r", *gray.shape[::-1], exc)
            return self._failed(Advice.NOT_MEASURED, found)
        if not quality.features:  # the binding's other way of saying NFIQ 2 failed
            return self._failed(Advice.NOT_MEASURED, found)
        for value in list(quality.actionable) + list(quality.features):
            if value.name in ACTIONABLE_THRESHOLDS or value.name in KEPT_FEATURES:
                found[value.name] = float(value.value)
        score = int(quality.score)
        report = QualityReport(
            nfiq2=score,
            measures=found,
            feedback=[a.value for a in final_advice(score, found)],
            failed=False,
            backend=self.backend.name,
        )
        return Assessment(report, domain_minutiae(result, float(ppi) / NATIVE_PPI))

    def _precheck(self, gray: np.ndarray, found: dict[str, float]) -> Advice | None:
        """A verdict for images NFIQ 2 must not be asked about, else None."""
        h, w = gray.shape
        if min(h, w) < MIN_SIDE_PX:
            return Advice.TOO_SMALL
        if max(h, w) > MAX_SIDE_PX:
            return Advice.NOT_A_FINGERPRINT
        mean, std = float(gray.mean()), float(gray.std())
        if std < ACTIONABLE_THRESHOLDS[UNIFORM] or mean > ACTIONABLE_THRESHOLDS[EMPTY]:
            return Advice.BLANK_IMAGE if mean > 127 else Advice.DARK_IMAGE
        if (gray <= 8).mean() > 0.9:
            return Advice.DARK_IMAGE
        fg = measures.foreground(gray, 16)
        found[FOREGROUND_FRACTION] = fg.fraction
        if not fg.mask.any():
            return Advice.BLANK_IMAGE
        found[PRINT_MEAN_GRAY] = float(fg.mean[fg.mask].mean())
        found[PRINT_CONTRAST] = float(fg.std[fg.mask].mean())
        texture = measures.ridge_texture(gray, NATIVE_PPI, step=16, window=32)
        ridged = texture.contrast > 12.0
        band = float(np.median(texture.band_fraction[ridged])) if ridged.any() else 0.0
        coherence = float(np.median(measures.orientation_coherence(gray, 16)[fg.mask]))
        found[RIDGE_BAND_FRACTION] = band
        found[RIDGE_COHERENCE] = coherence
        if band < MIN_BAND_FRACTION or coherence < MIN_COHERENCE:
            return Advice.NOT_A_FINGERPRINT
        centre = fg.centroid()
        if centre is not None:
            found["centre_offset_x"] = centre[0] - 0.5
            found["centre_offset_y"] = centre[1] - 0.5
        return None

    def _failed(self, advice: Advice, found: dict[str, float]) -> Assessment:
        report = QualityReport(
            nfiq2=None,
            measures=found,
            feedback=[advice.value],
            failed=True,
            backend=self.backend.name,
        )
        return Assessment(report, None)


def final_advice(score: int, found: dict[str, float]) -> list[Advice]:
    """Officer advice for a scored print, most useful first; empty for a good print."""
    if score >= GOOD_SCORE:
        return []
    advice: list[Advice] = []
    if found.get(FOREGROUND, float("inf")) < SMALL_FOREGROUND_PX:
        advice.append(Advice.MORE_CONTACT)
    mean = found.get(PRINT_MEAN_GRAY)
    if mean is not None:
        pressure = darkness_advice(mean, LIGHT_PRINT, DARK_PRINT)
        if pressure is not None:
            advice.append(pressure)
    if found.get(PRINT_CONTRAST, float("inf")) < LOW_CONTRAST:
        advice.append(Advice.CLEAN_GLASS)
    if found.get(MINUTIAE, float("inf")) < FEW_MINUTIAE or found.get(
        "FingerJetFX_MinutiaeCount", float("inf")
    ) < FEW_MINUTIAE:
        advice.append(Advice.FEW_DETAILS)
    elif found.get("OCL_Bin10_Mean", 1.0) < LOW_OCL and Advice.CLEAN_GLASS not in advice:
        advice.append(Advice.CLEAN_GLASS)
    off_x, off_y = found.get("centre_offset_x", 0.0), found.get("centre_offset_y", 0.0)
    if score < FEEDBACK_BELOW_SCORE and max(abs(off_x), abs(off_y)) > OFF_CENTRE:
        advice.extend(centring_advice(off_x, off_y, OFF_CENTRE) or [Advice.CENTRE_FINGER])
    if score < FEEDBACK_BELOW_SCORE and not advice:
        advice.append(Advice.PRESS_EVENLY)
    return advice
