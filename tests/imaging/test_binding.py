"""Images reach the NBIS binding without its per-byte copy, and nothing it computes changes."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.imaging.binding import NbisEngine, domain_minutiae, encode_png, load_backend
from appliance.imaging.matching import NbisMinutiae
from appliance.imaging.nfiq2 import QualityAssessor
from appliance.imaging.resample import resample
from tests.imaging.conftest import load_gray

#: FVC2002 prints from each sensor (DB2 at 569 ppi), 110_5 being one NFIQ 2 gives up on.
FVC_PRINTS = [("DB1_B", "101_1", 500), ("DB1_B", "107_4", 500), ("DB2_B", "103_2", 569),
              ("DB3_B", "105_6", 500), ("DB3_B", "110_5", 500), ("DB4_B", "109_8", 500)]


def own_way(extractor, image: np.ndarray):
    """What the binding computes from the PNG bytes it is documented to take."""
    try:
        return extractor.extract_minutiae(encode_png(image))
    except Exception as exc:  # compared below with what the engine raises
        return exc


def outcome(result) -> object:
    if isinstance(result, Exception):
        return type(result)
    quality = result.quality()
    return (
        quality.score,
        [(v.name, v.value) for v in [*quality.actionable, *quality.features]],
        [(m.x(), m.y(), m.angle(), m.kind().name, m.reliability()) for m in result.get()],
    )


@pytest.fixture(scope="module")
def prints(shared_data, hand) -> list[np.ndarray]:
    rng = np.random.default_rng(21)
    found = [resample(load_gray(shared_data / "fvc2002" / db / f"{name}.tif"), ppi)
             for db, name, ppi in FVC_PRINTS]
    return found + [hand[i].impression(rng, rolled=i % 2 == 0).image for i in (0, 3, 7)]


def test_nfiq2_and_minutiae_are_identical_to_the_binding_s_own_way(prints):
    engine = NbisEngine()
    reference = load_backend().new_extractor(nfiq2=True)
    for image in prints:
        try:
            mine = engine.extract(image)
        except engine.errors as exc:
            mine = exc
        assert outcome(mine) == outcome(own_way(reference, image))
    assert engine.hands_over_natively is True  # the copy-free way was taken, not fallen back


def test_the_quality_step_s_minutiae_are_mindtct_s(engine, prints):
    # MINDTCT on an extractor without NFIQ 2, as the sequence check used to build its own
    reference = NbisMinutiae(engine=_MindtctOnly())
    assessor = QualityAssessor(engine=engine)
    compared = 0
    for image in prints:
        assessment = assessor.assess_print(image, 500)
        if assessment.minutiae is None:
            continue
        assert assessment.minutiae == reference(image, 500)
        compared += 1
    assert compared >= len(prints) - 2


def test_resampled_prints_give_minutiae_in_the_caller_s_pixels(engine, shared_data):
    image = load_gray(shared_data / "fvc2002/DB2_B/104_3.tif")  # 569 ppi
    assessment = QualityAssessor(engine=engine).assess_print(image, 569)
    assert assessment.minutiae == NbisMinutiae(engine=engine)(image, 569)
    at_500 = domain_minutiae(engine.extract(resample(image, 569)))
    assert len(at_500) == len(assessment.minutiae) >= 15
    for mine, native in zip(assessment.minutiae, at_500, strict=True):
        assert (mine.x, mine.y) == pytest.approx((native.x * 569 / 500, native.y * 569 / 500))


def test_a_binding_without_the_file_method_keeps_its_own_way(prints):
    engine = NbisEngine(_WithoutFileMethod())
    assert engine.hands_over_natively is False
    reference = load_backend().new_extractor(nfiq2=True)
    assert outcome(engine.extract(prints[0])) == outcome(own_way(reference, prints[0]))


class _MindtctOnly(NbisEngine):
    """An engine on an extractor built without NFIQ 2."""

    def __init__(self) -> None:
        super().__init__()
        self._extractor = self.backend.new_extractor(nfiq2=False)


class _WithoutFileMethod:
    """The installed binding as a release would be that offered bytes only."""

    def __init__(self) -> None:
        self.real = load_backend()
        self.module = self.real.module
        self.name = self.real.name

    def new_extractor(self, *, nfiq2: bool):
        inner = self.real.new_extractor(nfiq2=nfiq2)

        class BytesOnly:
            def extract_minutiae(self, data: bytes):
                return inner.extract_minutiae(data)

        return BytesOnly()

    def errors(self):
        return self.real.errors()
