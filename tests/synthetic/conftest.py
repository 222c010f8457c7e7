import numpy as np
import pytest

from drivers.synthetic import FingerClass, Hand, MasterFinger, generate_master

CLASS_SEEDS = {
    FingerClass.ARCH: 1001,
    FingerClass.TENTED_ARCH: 1002,
    FingerClass.LEFT_LOOP: 1003,
    FingerClass.RIGHT_LOOP: 1004,
    FingerClass.WHORL: 1005,
}


@pytest.fixture(scope="session")
def masters() -> dict[FingerClass, MasterFinger]:
    return {c: generate_master(seed, c) for c, seed in CLASS_SEEDS.items()}


@pytest.fixture(scope="session")
def loop(masters: dict[FingerClass, MasterFinger]) -> MasterFinger:
    return masters[FingerClass.LEFT_LOOP]


@pytest.fixture(scope="session")
def hand() -> Hand:
    return Hand.generate(77)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)
