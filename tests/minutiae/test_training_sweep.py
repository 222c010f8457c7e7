"""The sweep tool: its point syntax and the cap it measures (its scoring is release.set_eers,
run in test_training_release)."""

import numpy as np
import pytest

from models.training.release import kept
from models.training.sweep import point


def test_a_point_is_threshold_top_up_count_and_cap():
    assert point("0.20:30") == (0.20, 30, 0)
    assert point("0.16") == (0.16, 0, 0)
    assert point("0.16:30:60") == (0.16, 30, 60)


def test_a_malformed_point_is_an_error():
    with pytest.raises(ValueError):
        point("0.2:many")
    with pytest.raises(ValueError):
        point("0.2:30:all")


def test_the_cap_keeps_the_strongest_of_what_the_threshold_and_top_up_keep():
    # Quality is the probability times 100; given weakest first to check the sort.
    quality = np.array([5.0, 7.0, 10.0, 20.0, 30.0, 50.0, 90.0])
    found = {(101, 1): np.column_stack([np.arange(7.0), np.zeros((7, 3)), quality])}

    plain = kept(found, 0.16, (0, 0.06))[(101, 1)]
    assert list(plain[:, 4]) == [90.0, 50.0, 30.0, 20.0]
    topped = kept(found, 0.16, (6, 0.06))[(101, 1)]
    assert list(topped[:, 4]) == [90.0, 50.0, 30.0, 20.0, 10.0, 7.0]
    capped = kept(found, 0.16, (6, 0.06), cap=3)[(101, 1)]
    assert list(capped[:, 0]) == [6.0, 5.0, 4.0]  # the three strongest, strongest first
    assert len(kept(found, 0.16, (0, 0.06), cap=10)[(101, 1)]) == 4  # a cap above: no change
