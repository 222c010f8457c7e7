"""Names one build of the application: ``<version>-<12 hex digits of its content>``.

The installer keeps one venv per stamp, so running it again with the same source is a no-op
and an upgrade builds beside the running version. The content hash covers what would go into
the wheel (for a wheel, its RECORD of per-file hashes), not timestamps or caches.
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
import zipfile
from pathlib import Path

SKIPPED_DIRS = {".git", ".venv", "__pycache__", "build", "demo-state", ".pytest_cache",
                ".ruff_cache", "node_modules"}


def source_stamp(root: Path) -> str:
    """Version from pyproject.toml and a hash over every source file's path and bytes."""
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{version}-{digest.hexdigest()[:12]}"


def wheel_stamp(wheel: Path) -> str:
    """Version from the wheel's name and a hash of its RECORD."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as archive:
        record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        digest = hashlib.sha256(archive.read(record)).hexdigest()
    return f"{version}-{digest[:12]}"


if __name__ == "__main__":
    target = Path(sys.argv[1])
    print(wheel_stamp(target) if target.suffix == ".whl" else source_stamp(target))
