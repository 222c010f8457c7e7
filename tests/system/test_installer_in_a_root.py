"""The installer in a clean Debian root: run twice (the second changes nothing), the units
verified where they were installed, the station's commands and one booking run there, then
uninstalled with the data kept. This is install/build-root.sh, for this machine's Debian
release and architecture.

It needs root, mmdebstrap and the Debian mirror and PyPI, and takes minutes (a root is built
and the application's wheels are installed into it), so it runs only when asked:
``BST_ROOT_BUILD=1 .venv/bin/python -m pytest tests/system/test_installer_in_a_root.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.system.conftest import INSTALL

pytestmark = pytest.mark.slow


def test_install_twice_smoke_and_uninstall_in_a_clean_root(tmp_path: Path) -> None:
    if os.environ.get("BST_ROOT_BUILD") != "1":
        pytest.skip("builds a Debian root (minutes, network): set BST_ROOT_BUILD=1 to run it")
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        pytest.skip("needs root and mmdebstrap (apt-get install mmdebstrap)")
    suite = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().split()
                 if "=" in line).get("VERSION_CODENAME", "trixie").strip('"')
    log = tmp_path / "build-root.log"
    with log.open("w") as out:
        result = subprocess.run([str(INSTALL / "build-root.sh"), "--suite", suite,
                                 "--dir", str(tmp_path / "root")], stdout=out,
                                stderr=subprocess.STDOUT, timeout=3600)
    text = log.read_text(errors="replace")
    assert result.returncode == 0, text[-4000:]
    assert "already installed" in text and "second run: no file changed" in text
    assert "--- smoke passed" in text and "uninstalled;" in text
