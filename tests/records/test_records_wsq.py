"""WSQ through NBIS: conformance with NIST's reference reconstructions, encoding, robustness."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pytest
from PIL import Image
from records_support import gray, shared_path

from appliance.records.errors import WsqError
from appliance.records.wsq import _DecoderProcess, decode_wsq, encode_wsq, read_wsq_header


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def difference(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Largest absolute pixel difference and how many pixels differ."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(diff.max()), int(np.count_nonzero(diff))


def test_decoder_reproduces_nist_reconstruction_of_fixture(fixtures):
    decoded = decode_wsq((fixtures / "wsq/75/cmp00010.wsq").read_bytes())
    reference = gray(fixtures / "wsq_decoded/75/cmp00010.webp")
    assert decoded.shape == reference.shape == (526, 375)
    largest, differing = difference(decoded, reference)
    print(f"cmp00010 0.75 bpp: largest difference {largest}, {differing} pixels differ")
    assert largest <= 1


def test_codestream_from_other_wavelet_filters_decodes(fixtures):
    data = (fixtures / "wsq/not_7_9/cmp00010.wsq").read_bytes()
    decoded = decode_wsq(data)
    original = gray(fixtures / "input/cmp00010.webp")
    assert decoded.shape == original.shape
    assert psnr(decoded, original) > 28


def test_encoding_the_nist_input_compresses_about_fifteen_to_one(fixtures):
    original = gray(fixtures / "input/cmp00010.webp")
    data = encode_wsq(original)
    ratio = original.size / len(data)
    decoded = decode_wsq(data)
    print(f"cmp00010 encoded: {ratio:.1f}:1, PSNR {psnr(decoded, original):.1f} dB")
    assert decoded.shape == original.shape
    assert 8 <= ratio <= 25
    assert psnr(decoded, original) > 28


def test_resolution_is_recorded_in_the_nistcom_comment():
    image = np.full((64, 80), 200, np.uint8)
    assert read_wsq_header(encode_wsq(image)).ppi == 500
    header = read_wsq_header(encode_wsq(image, ppi=1000))
    assert (header.width, header.height, header.ppi, header.blocks) == (80, 64, 1000, 3)
    assert decode_wsq(encode_wsq(image, ppi=1000)).shape == (64, 80)


def test_direct_codec_gives_the_same_bytes_as_the_pillow_plugin(fixtures):
    original = gray(fixtures / "input/cmp00010.webp")
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, "WSQ")
    assert encode_wsq(original) == buffer.getvalue()
    data = (fixtures / "wsq/75/cmp00010.wsq").read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(decode_wsq(data), np.asarray(image))


@pytest.mark.parametrize("image", [
    np.zeros((64, 64), np.uint16),
    np.zeros((64, 64, 3), np.uint8),
    np.zeros((16, 64), np.uint8),
    [[0] * 64] * 64,
])
def test_encoder_refuses_what_wsq_cannot_hold(image):
    with pytest.raises(WsqError):
        encode_wsq(image)


@pytest.mark.parametrize("cut", [0, 2, 8, 100, 700, 16000])
def test_truncated_codestream_is_a_wsq_error(fixtures, cut):
    data = (fixtures / "wsq/75/cmp00010.wsq").read_bytes()
    with pytest.raises(WsqError):
        decode_wsq(data[:cut])


def test_codestream_that_crashes_nbis_costs_an_error_not_the_process(fixtures):
    # One byte of block 1's entropy-coded data changed: NBIS writes out of bounds on it.
    data = bytearray((fixtures / "wsq/not_7_9/cmp00010.wsq").read_bytes())
    data[835] = 179
    with pytest.raises(WsqError):
        decode_wsq(bytes(data))
    assert decode_wsq((fixtures / "wsq/75/cmp00010.wsq").read_bytes()).shape == (526, 375)


@pytest.mark.slow
@pytest.mark.parametrize("rate", ["75", "225", "not_7_9"])
def test_every_nist_reference_codestream_decodes_as_nist_reconstructs_it(rate, capsys):
    folder = shared_path("nist_wsq_reference")
    files = sorted((folder / "wsq" / rate).glob("*.wsq"))
    assert files
    worst, differing, pixels = 0, 0, 0
    for path in files:
        decoded = decode_wsq(path.read_bytes(), isolate=False)  # NIST's own files: trusted
        reference = gray(folder / "wsq_decoded" / rate / f"{path.stem}.webp")
        assert decoded.shape == reference.shape, path.name
        largest, count = difference(decoded, reference)
        worst, differing, pixels = max(worst, largest), differing + count, pixels + decoded.size
    with capsys.disabled():
        print(f"\nWSQ {rate}: {len(files)} files, largest pixel difference {worst}, "
              f"{differing} of {pixels} pixels differ")
    assert worst <= 1


@pytest.mark.slow
def test_every_nist_input_encodes_near_fifteen_to_one_and_decodes(capsys):
    folder = shared_path("nist_wsq_reference")
    ratios, psnrs, versus_nist = [], [], []
    for path in sorted((folder / "input").glob("*.webp")):
        original = gray(path)
        data = encode_wsq(original)
        decoded = decode_wsq(data, isolate=False)
        assert decoded.shape == original.shape, path.name
        ratios.append(original.size / len(data))
        psnrs.append(psnr(decoded, original))
        nist = folder / "wsq" / "75" / f"{path.stem}.wsq"
        versus_nist.append(len(data) / nist.stat().st_size)
    with capsys.disabled():
        print(f"\nWSQ encode of {len(ratios)} NIST inputs: ratio min {min(ratios):.1f} median "
              f"{statistics.median(ratios):.1f} max {max(ratios):.1f}; PSNR min "
              f"{min(psnrs):.1f} median {statistics.median(psnrs):.1f} dB; size against NIST's "
              f"0.75 bpp files {min(versus_nist):.2f}..{max(versus_nist):.2f}")
    assert len(ratios) == 40
    assert 10 <= statistics.median(ratios) <= 20
    assert min(ratios) >= 8 and max(ratios) <= 50
    assert min(psnrs) >= 23


def test_a_frame_declaring_more_than_the_bound_is_refused_before_decoding() -> None:
    """Sizes a header declares are checked before anything is allocated for them."""
    data = bytearray(encode_wsq(np.full((64, 80), 128, np.uint8)))
    sof = data.index(b"\xff\xa2") + 4  # the marker, then 2 bytes of length
    data[sof + 2:sof + 4] = (9000).to_bytes(2, "big")  # rows
    data[sof + 4:sof + 6] = (9000).to_bytes(2, "big")  # columns
    with pytest.raises(WsqError, match="9000x9000"):
        decode_wsq(bytes(data))


def test_the_decoder_process_works_with_descriptors_above_1024(fixtures, low_fds_taken):
    """The isolated decoder's pipes numbered above 1024: select() refused them, poll() waits."""
    decoder = _DecoderProcess()
    try:
        pixels, cols, rows = decoder.decode((fixtures / "wsq/75/cmp00010.wsq").read_bytes())
        assert decoder._running().stdout.fileno() >= 1024
    finally:
        decoder.close()
    assert (cols, rows) == (375, 526)
    assert np.array_equal(np.frombuffer(pixels, np.uint8).reshape(rows, cols),
                          decode_wsq((fixtures / "wsq/75/cmp00010.wsq").read_bytes()))
