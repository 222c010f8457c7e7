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

DEFAULT_PPI = 500
#: Largest image ``extract`` reads: a 1000 ppi four-finger slap (3.2 x 3 in) is 9.6 million
#: pixels. At this size the command peaks near 0.9 GB of memory
#: (``benchmarks/extract_memory.py``).
MAX_PIXELS = 10_000_000


def minutiae_json(minutiae) -> str:
    """The command's JSON line for a list of :class:`appliance.domain.Minutia`."""
    rows = [
        [round(m.x, 1), round(m.y, 1), round(m.angle_deg, 1) % 360.0, m.kind.value, m.quality]
        for m in minutiae
    ]
    return json.dumps({"minutiae": rows})


def extract_command(image_path: Path, ppi: int | None, out: TextIO = sys.stdout, *,
                    max_pixels: int = MAX_PIXELS) -> int:
    """Print the minutiae of the image at ``image_path`` (``ppi`` defaults to 500).

    Returns 0 on success, 2 for an unreadable or oversized image or a bad resolution, 1 when
    the model cannot be loaded; reasons go to stderr. The image's size is read from its header
    and refused above ``max_pixels`` before any pixel is decoded. A reader of stdout that
    leaves early is the entry points' concern (:func:`appliance.system.console.exit_code`:
    exit 1, no traceback).
    """
    from appliance.minutiae.extractor import PPI_RANGE, MinutiaeExtractor

    ppi = DEFAULT_PPI if ppi is None else int(ppi)
    if not PPI_RANGE[0] <= ppi <= PPI_RANGE[1]:
        print(f"--ppi must be in {PPI_RANGE[0]}..{PPI_RANGE[1]} (the resolutions the "
              f"extractor reads ridges at), got {ppi}", file=sys.stderr)
        return 2
    try:
        with Image.open(image_path) as img:
            width, height = img.size
            if width * height > max_pixels:
                print(f"{image_path}: {width} x {height} pixels is over the limit of "
                      f"{max_pixels:,} (--max-megapixels)", file=sys.stderr)
                return 2
            image = np.asarray(img.convert("L"))
    except Image.DecompressionBombError:
        print(f"{image_path}: the image declares more pixels than Pillow opens, over the limit "
              f"of {max_pixels:,} (--max-megapixels)", file=sys.stderr)
        return 2
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
