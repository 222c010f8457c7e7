"""NFIQ 2 through the NBIS binding: real scores, and verdicts instead of made-up scores."""

from __future__ import annotations

import importlib.metadata
import json
import types

import numpy as np
import pytest

from appliance.errors import ImagingError
from appliance.imaging import binding, nfiq2
from appliance.imaging.feedback import Advice
from appliance.imaging.nfiq2 import QualityAssessor, backend_name, final_advice
from tests.imaging.conftest import load_gray


def test_backend_is_named_with_its_version():
    name = backend_name()
    dist, version = name.split(" ")
    assert dist in nfiq2.BACKEND_DISTRIBUTIONS
    assert version == importlib.metadata.version(dist)


def test_no_binding_fails_loudly_at_start(monkeypatch):
    monkeypatch.setattr(binding, "_backend", None)
    monkeypatch.setattr(binding, "BACKEND_DISTRIBUTIONS", ("no-such-nbis-binding",))
    with pytest.raises(nfiq2.QualityBackendUnavailable) as caught:
        QualityAssessor()
    assert isinstance(caught.value, ImagingError)
    assert "no-such-nbis-binding: not installed" in str(caught.value)


def test_a_synthetic_flat_print_gets_a_score_and_its_measures(assessor, hand):
    image = hand[1].impression(np.random.default_rng(3)).image
    report = assessor.assess(image, 500)
    assert not report.failed
    assert 0 < report.nfiq2 <= 100
    assert report.backend == backend_name()
    for name in (nfiq2.UNIFORM, nfiq2.EMPTY, nfiq2.MINUTIAE, nfiq2.FOREGROUND):
        assert name in report.measures
    json.dumps(report.measures)  # plain floats, ready for the kiosk


def test_a_real_print_scores_like_nist_says(assessor, shared_data):
    report = assessor.assess(load_gray(shared_data / "fvc2002/DB1_B/101_1.tif"), 500)
    assert not report.failed
    assert 40 <= report.nfiq2 <= 90
    assert report.measures[nfiq2.MINUTIAE] >= 5


def test_other_resolutions_are_resampled_and_say_so(assessor, shared_data):
    report = assessor.assess(load_gray(shared_data / "fvc2002/DB2_B/101_1.tif"), 569)
    assert not report.failed
    assert report.measures[nfiq2.RESAMPLED_FROM_PPI] == 569
    native = assessor.assess(load_gray(shared_data / "fvc2002/DB1_B/101_1.tif"), 500)
    assert nfiq2.RESAMPLED_FROM_PPI not in native.measures


@pytest.mark.parametrize(
    ("name", "image", "ppi", "advice"),
    [
        ("blank", np.full((400, 400), 255, np.uint8), 500, Advice.BLANK_IMAGE),
        ("clean glass", np.full((400, 400), 242, np.uint8), 500, Advice.BLANK_IMAGE),
        ("black", np.zeros((400, 400), np.uint8), 500, Advice.DARK_IMAGE),
        ("tiny", np.full((120, 90), 128, np.uint8), 500, Advice.TOO_SMALL),
        (
            "noise",
            np.random.default_rng(0).integers(0, 256, (400, 400)).astype(np.uint8),
            500,
            Advice.NOT_A_FINGERPRINT,
        ),
        ("preview", np.full((375, 400), 200, np.uint8), 125, Advice.WRONG_RESOLUTION),
        ("float array", np.zeros((400, 400), np.float32), 500, Advice.UNREADABLE),
        ("whole platen", np.full((2100, 1600), 200, np.uint8), 500, Advice.NOT_A_FINGERPRINT),
    ],
)
def test_bad_images_get_a_verdict_not_a_score(assessor, name, image, ppi, advice):
    report = assessor.assess(image, ppi)
    assert report.failed, name
    assert report.nfiq2 is None
    assert report.feedback == [advice.value]
    assert report.backend == backend_name()


def test_text_is_not_a_fingerprint(assessor):
    from PIL import Image, ImageDraw

    page = Image.new("L", (500, 400), 245)
    draw = ImageDraw.Draw(page)
    for row in range(20):
        draw.text((10, row * 20), "RIGHT FOUR FINGERS TAKEN SIMULTANEOUSLY 0123", fill=0)
    report = assessor.assess(np.asarray(page), 500)
    assert report.failed
    assert report.feedback == [Advice.NOT_A_FINGERPRINT.value]


def test_nist_test_patterns_are_refused(assessor, shared_data):
    folder = shared_data / "nist_wsq_reference/input"
    for name in ("cmp00018.webp", "cmp00019.webp"):  # a light and a dark uniform test pattern
        report = assessor.assess(load_gray(folder / name), 500)
        assert report.failed and report.nfiq2 is None, name


def test_a_binding_failure_is_a_failure_not_a_score(assessor, shared_data):
    # NFIQ 2 itself gives up on this FVC2002 DB3 print (nbis-py raises Nfiq2ComputeFailed).
    report = assessor.assess(load_gray(shared_data / "fvc2002/DB3_B/110_5.tif"), 500)
    assert report.failed
    assert report.nfiq2 is None
    assert report.feedback == [Advice.NOT_MEASURED.value]


class _ZeroScoreBinding:
    """Stands in for a binding release that reports an NFIQ 2 failure as score 0 with no
    features (nbis-python does; the installed nbis-py raises instead)."""

    class NbisError(Exception):
        pass

    class NbisExtractorSettings:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    @staticmethod
    def new_nbis_extractor(settings):
        quality = types.SimpleNamespace(score=0, actionable=[], features=[])
        result = types.SimpleNamespace(quality=lambda: quality, get=lambda: [])
        return types.SimpleNamespace(extract_minutiae=lambda data: result)


def test_score_zero_without_features_is_reported_as_failure(hand):
    backend = nfiq2.Backend("nbis-python", "0.1.21", _ZeroScoreBinding)
    image = hand[1].impression(np.random.default_rng(3)).image
    report = QualityAssessor(backend).assess(image, 500)
    assert report.failed
    assert report.nfiq2 is None
    assert report.backend == "nbis-python 0.1.21"


def test_feedback_rules_speak_plainly():
    light = final_advice(35, {nfiq2.PRINT_MEAN_GRAY: 215.0})
    assert Advice.PRESS_HARDER in light
    dark = final_advice(35, {nfiq2.PRINT_MEAN_GRAY: 60.0})
    assert Advice.PRESS_LIGHTER in dark
    small = final_advice(35, {nfiq2.FOREGROUND: 30000.0, nfiq2.PRINT_MEAN_GRAY: 150.0})
    assert small[0] is Advice.MORE_CONTACT
    few = final_advice(20, {nfiq2.MINUTIAE: 4.0})
    assert Advice.FEW_DETAILS in few
    off = final_advice(30, {"centre_offset_x": 0.3, "centre_offset_y": 0.0})
    assert Advice.MOVE_LEFT in off
    assert final_advice(35, {}) == [Advice.PRESS_EVENLY]
    assert final_advice(85, {nfiq2.PRINT_MEAN_GRAY: 215.0}) == []


def test_a_lightly_pressed_print_asks_for_more_pressure(assessor, hand):
    image = hand[2].impression(np.random.default_rng(5)).image.astype(np.float32)
    faint = (255 - (255 - image) * 0.25).astype(np.uint8)  # ridges barely touch the glass
    report = assessor.assess(faint, 500)
    assert not report.failed
    assert Advice.PRESS_HARDER.value in report.feedback
