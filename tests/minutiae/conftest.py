import numpy as np
import pytest

from appliance.minutiae import DEFAULT_MODEL_DIR, MinutiaeExtractor
from drivers.synthetic import SyntheticImpression, generate_master

#: Synthetic fingers for the tests; none of them is a training, validation or benchmark seed.
TEST_SEEDS = (4101, 4102, 4103, 4104)


@pytest.fixture(scope="session")
def extractor() -> MinutiaeExtractor:
    ex = MinutiaeExtractor(DEFAULT_MODEL_DIR)
    ex.warm_up()
    return ex


@pytest.fixture(scope="session")
def impressions() -> list[SyntheticImpression]:
    out = []
    for i, seed in enumerate(TEST_SEEDS):
        rng = np.random.default_rng(seed)
        out.append(generate_master(seed).impression(rng, quality=0.85 - 0.1 * i, moisture=0.0))
    return out

