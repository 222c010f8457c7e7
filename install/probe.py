"""Does the freshly built application run here? Run by the installer with the new venv's Python.

Loads what has failed on real systems before anything is switched over: the NFIQ 2 binding
(no aarch64 wheel of one, a glibc too old for the other) and onnxruntime with the shipped
minutiae model. Prints one line naming what loaded; on failure prints why and exits 1.

``--has-store CONFIG`` instead exits 0 when the config's store database exists (an upgrade
then backs it up first).
"""

from __future__ import annotations

import sys
from pathlib import Path


def probe() -> str:
    """One line naming the NFIQ 2 binding and the model, or raises with the reason."""
    import onnxruntime

    from appliance.imaging.nfiq2 import load_backend
    from appliance.minutiae.extractor import MinutiaeExtractor

    backend = load_backend()
    backend.new_extractor(nfiq2=True)
    extractor = MinutiaeExtractor()
    extractor.warm_up()
    return (f"NFIQ 2 through {backend.name}; onnxruntime {onnxruntime.__version__} runs "
            f"minutiae model {extractor.manifest.version}")


def has_store(config_path: Path) -> bool:
    """True when the store this config names already exists."""
    from appliance.config import load_config

    return load_config(config_path).database_path.exists()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--has-store"]:
        sys.exit(0 if has_store(Path(sys.argv[2])) else 1)
    try:
        print(probe())
    except Exception as exc:  # any failure to load is the answer: report it, do not install
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
