"""The sweep tool's point syntax (its scoring is release.set_eers, run in test_training_release)."""

import pytest

from models.training.sweep import point


def test_a_point_is_threshold_and_top_up_count():
    assert point("0.20:30") == (0.20, 30)
    assert point("0.16") == (0.16, 0)


def test_a_malformed_point_is_an_error():
    with pytest.raises(ValueError):
        point("0.2:many")
