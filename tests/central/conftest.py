"""Central's tests drive real stations (the sync rigs) against real brokers and PKI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import REPO
from tests.sync.conftest import (  # noqa: F401  (shared fixtures)
    capture_factory,
    central_signing,
    service_rig,
)
from tests.sync.pki import Pki

# A page's assertions wait as long as its actions may: on a loaded 2-core machine a render that
# follows a check on the station's imaging thread can take longer than Playwright's 5 s default.
expect.set_options(timeout=60_000)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture
async def browser():
    """Debian's Chromium under Playwright, headless."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
def artifacts(request) -> Path:
    """Where a browser test keeps its screenshots (BST_ARTIFACTS, else ./artifacts)."""
    root = Path(os.environ.get("BST_ARTIFACTS", REPO / "artifacts"))
    folder = root / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def postgres():
    """A DSN to a fresh PostgreSQL cluster started for this test."""
    from tests.central.postgres import postgres_cluster

    with postgres_cluster() as dsn:
        yield dsn
