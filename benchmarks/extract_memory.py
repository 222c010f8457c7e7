"""Peak memory of ``booking-station extract`` by image size, beside NIST MINDTCT on the same image.

    .venv/bin/python benchmarks/extract_memory.py [--megapixels 1 4 10]

For each size a ridge-like test pattern is written as PNG and each tool runs in its own child
process (so that each peak is its own): the station's command, and MINDTCT through the nbis
binding the station loads. Peak resident memory is the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MINDTCT = """
import sys
import numpy as np
from PIL import Image
from appliance.imaging.matching import NbisMinutiae
image = np.asarray(Image.open(sys.argv[1]).convert("L"))
print(len(NbisMinutiae()(image, 500)))
"""


def pattern(megapixels: float) -> np.ndarray:
    side = int(math.sqrt(megapixels * 1_000_000))
    y, x = np.mgrid[0:side, 0:side]
    return (128 + 100 * np.sin((x * 0.7 + y * 0.3) / 1.5)).astype(np.uint8)


def peak_mb(argv: list[str]) -> float:
    """Run ``argv`` to the end; the peak resident memory of it (and its own children) in MB."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 4.0, 10.0])
    args = parser.parse_args()
    station = [sys.executable, "-m", "appliance.cli", "extract"]
    print(f"load average {os.getloadavg()[0]:.1f}; peak RSS in MB (child processes)")
    print("megapixels  extract  MINDTCT  ratio")
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.megapixels:
            path = Path(tmp) / f"{mp}.png"
            Image.fromarray(pattern(mp)).save(path)
            ours = peak_mb([*station, str(path), "--max-megapixels", str(mp + 1)])
            nist = peak_mb([sys.executable, "-c", MINDTCT, str(path)])
            print(f"{mp:10.1f}  {ours:7.0f}  {nist:7.0f}  {ours / nist:5.2f}")


if __name__ == "__main__":
    main()
