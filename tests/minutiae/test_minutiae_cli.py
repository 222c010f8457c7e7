import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from minutiae_helpers import as_array
from PIL import Image

from appliance.cli.minutiae import extract_command
from models.training.metrics import match

REPO = Path(__file__).resolve().parents[2]


def run(path: Path, ppi: int | None) -> tuple[int, dict | None]:
    out = io.StringIO()
    rc = extract_command(path, ppi, out=out)
    return rc, json.loads(out.getvalue()) if rc == 0 else None


def check_format(doc: dict, width: int, height: int) -> np.ndarray:
    assert list(doc) == ["minutiae"]
    rows = doc["minutiae"]
    for row in rows:
        assert len(row) == 5
        x, y, angle, kind, quality = row
        assert -0.5 <= x < width and -0.5 <= y < height
        assert 0.0 <= angle < 360.0
        assert kind in ("E", "B")
        assert isinstance(quality, int) and 0 <= quality <= 100
    return np.array([(r[0], r[1], np.radians(r[2])) for r in rows]).reshape(-1, 3)


def test_extract_synthetic_png_agrees_with_ground_truth(tmp_path, impressions):
    imp = impressions[0]
    path = tmp_path / "print.png"
    Image.fromarray(imp.image).save(path)
    rc, doc = run(path, None)
    assert rc == 0
    found = check_format(doc, imp.image.shape[1], imp.image.shape[0])
    truth = as_array(imp.minutiae)
    pairs = match(found, truth)  # 12 px, 30 degrees: a wrong angle convention fails here
    assert len(pairs) >= 0.5 * len(truth)
    assert len(pairs) >= 0.5 * len(found)


def test_extract_with_ppi_gives_input_pixels(tmp_path, impressions):
    imp = impressions[1]
    h, w = imp.image.shape
    big = Image.fromarray(imp.image).resize((w * 2, h * 2), Image.Resampling.BICUBIC)
    path = tmp_path / "print1000.png"
    big.save(path)
    rc, doc = run(path, 1000)
    assert rc == 0
    found = check_format(doc, 2 * w, 2 * h)
    truth = as_array(imp.minutiae)
    truth[:, :2] = (truth[:, :2] + 0.5) * 2 - 0.5
    assert len(match(found, truth, px=24.0)) >= 0.45 * len(truth)


def test_extract_real_fvc_print(data_dir, tmp_path):
    path = data_dir / "fvc2002" / "DB1_B" / "101_1.tif"
    if not path.exists():
        pytest.skip(f"{path} not present")
    rc, doc = run(path, 500)
    assert rc == 0
    with Image.open(path) as img:
        width, height = img.size
    found = check_format(doc, width, height)
    assert 15 <= len(found) <= 150


def test_blank_image_prints_an_empty_list(tmp_path):
    path = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300), 255, np.uint8)).save(path)
    assert run(path, None) == (0, {"minutiae": []})


def test_unreadable_file_and_bad_ppi_are_usage_errors(tmp_path, capsys):
    path = tmp_path / "not-an-image.png"
    path.write_bytes(b"hello")
    assert run(path, None)[0] == 2
    assert run(tmp_path / "missing.png", None)[0] == 2
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(good)
    assert run(good, 0)[0] == 2
    assert "not-an-image.png" in capsys.readouterr().err
    for ppi in (100, 249, 2001):
        assert run(good, ppi)[0] == 2
        assert "250..2000" in capsys.readouterr().err
    assert run(good, 250)[0] == 0


def test_oversized_images_are_refused_from_their_header(tmp_path):
    """A 20000 x 20000 PNG or a BMP claiming 60000 x 60000: exit 2 before decoding, no trace."""
    huge = tmp_path / "huge.png"
    Image.new("L", (20000, 20000), 255).save(huge)
    bmp = tmp_path / "liar.bmp"
    Image.new("L", (8, 8), 0).save(bmp)
    header = bytearray(bmp.read_bytes())
    header[18:22] = (60000).to_bytes(4, "little")  # BITMAPINFOHEADER width
    header[22:26] = (60000).to_bytes(4, "little")  # and height
    bmp.write_bytes(bytes(header))
    for path in (huge, bmp):
        proc = subprocess.run([sys.executable, "-m", "appliance.cli", "extract", str(path)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "over the limit" in proc.stderr and "Traceback" not in proc.stderr
    small = tmp_path / "one-megapixel.png"
    Image.new("L", (1000, 1000), 255).save(small)
    lowered = subprocess.run([sys.executable, "-m", "appliance.cli", "extract", str(small),
                              "--max-megapixels", "0.5"], cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert lowered.returncode == 2 and "500,000" in lowered.stderr


def test_the_command_prints_one_json_line(tmp_path, impressions):
    path = tmp_path / "print.png"
    Image.fromarray(impressions[2].image).save(path)
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "extract", str(path), "--ppi", "500"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert len(json.loads(lines[0])["minutiae"]) > 10


def test_a_reader_that_leaves_early_gets_an_exit_code_not_a_traceback(tmp_path, impressions):
    """``booking-station extract IMG | head -c 10``: the pipe closes before the JSON is written."""
    path = tmp_path / "print.png"
    Image.fromarray(impressions[2].image).save(path)
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "extract", str(path)],
                            cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child has even loaded the model
    try:
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert rc == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err
