"""``booking-station extract IMAGE [--ppi N]``: the minutiae of one image file, as JSON.

Output (one line on stdout)::

    {"minutiae": [[x, y, angle_deg, "E"|"B", quality], ...]}

x, y are pixels of the input image (origin top-left, y down), the angle is degrees
counter-clockwise from +x as seen on screen (ISO/IEC 19794-2), quality 0..100. Outside
harnesses measure the extractor through this command: keep the format exactly so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from appliance.errors import StationError
from appliance.system.console import exit_code

DEFAULT_PPI = 500


def minutiae_json(minutiae) -> str:
    """The command's JSON line for a list of :class:`appliance.domain.Minutia`."""
    rows = [
        [round(m.x, 1), round(m.y, 1), round(m.angle_deg, 1) % 360.0, m.kind.value, m.quality]
        for m in minutiae
    ]
    return json.dumps({"minutiae": rows})


def extract_command(image_path: Path, ppi: int | None, out: TextIO = sys.stdout) -> int:
    """Print the minutiae of the image at ``image_path`` (``ppi`` defaults to 500).

    Returns 0 on success, 2 for an unreadable image or a bad resolution, 1 when the model
    cannot be loaded; reasons go to stderr. A reader of stdout that leaves early is the entry
    points' concern (:func:`appliance.system.console.exit_code`: exit 1, no traceback).
    """
    from appliance.minutiae.extractor import PPI_RANGE, MinutiaeExtractor

    ppi = DEFAULT_PPI if ppi is None else int(ppi)
    if not PPI_RANGE[0] <= ppi <= PPI_RANGE[1]:
        print(f"--ppi must be in {PPI_RANGE[0]}..{PPI_RANGE[1]}, got {ppi}", file=sys.stderr)
        return 2
    try:
        with Image.open(image_path) as img:
            image = np.asarray(img.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        print(f"{image_path}: cannot read image: {exc}", file=sys.stderr)
        return 2
    try:
        extractor = MinutiaeExtractor()
        minutiae = extractor.extract(image, ppi=ppi)
    except StationError as exc:
        print(f"minutiae model: {exc}", file=sys.stderr)
        return 1
    print(minutiae_json(minutiae), file=out, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.cli.minutiae IMAGE [--ppi N]``: the same as the station command."""
    import argparse

    parser = argparse.ArgumentParser(prog="booking-station extract", description=__doc__)
    parser.add_argument("image", type=Path, help="fingerprint image file (PNG, TIFF, BMP, ...)")
    parser.add_argument("--ppi", type=int, default=None, help="scan resolution (default 500)")
    args = parser.parse_args(argv)
    return exit_code(lambda: extract_command(args.image, args.ppi))


if __name__ == "__main__":
    raise SystemExit(main())
