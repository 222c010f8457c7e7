"""Central's tests drive real stations (the sync rigs) against real brokers and PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync.conftest import capture_factory, service_rig  # noqa: F401  (shared fixtures)
from tests.sync.pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")
