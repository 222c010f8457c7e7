"""WSQ, the FBI's wavelet compression for 500 ppi fingerprints, through the ``wsq`` package.

ANSI/NIST-ITL records carry 500 ppi prints as WSQ (compression code ``WSQ20``). The ``wsq``
package wraps the NIST NBIS codec; it always encodes at 0.75 bit per pixel (about 15:1 on a
typical print) and handles 8-bit grayscale only.

Two decisions are worth knowing:

* We call the package's C functions (``_wsq.compress`` / ``_wsq.decompress``), the ones its
  Pillow plugin calls, instead of going through Pillow: the plugin copies every pixel through a
  Python list, which doubles the encode time of a slap. ``tests/records`` checks that both
  paths give the same bytes, so a change in the package shows up there.
* NBIS trusts its input: in our fuzzing a truncated codestream made it abort, a missing block
  or one flipped byte of entropy-coded data made it write out of bounds and crash the process.
  ``read_wsq_header`` walks every marker segment in Python first (lengths, table contents, frame
  size, three blocks, the end-of-image marker), and ``decode_wsq`` then runs NBIS in a separate
  decoder process, so a codestream that still crashes it costs a ``WsqError``, not the station.

Codestream layout (WSQ Gray-scale Fingerprint Image Compression Specification, markers 0xFFAx)::

    SOI FFA0 | tables (DTT FFA4, DQT FFA5, DHT FFA6, DRT FFA7, COM FFA8)* | SOF FFA2 |
    { tables* | SOB FFA3 + entropy-coded data } x 3 | EOI FFA1

Every segment but SOI/EOI starts with a 2-byte length that counts itself. The NISTCOM comment
(COM starting ``NIST_COM``) carries ``PPI``; ``encode_wsq`` writes the caller's resolution there.
"""

from __future__ import annotations

import atexit
import numbers
import os
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.records.errors import WsqError

try:  # importing the package also registers its Pillow plugin, as the package intends
    import _wsq  # the package's C extension: compress(bytes, rows, cols, bitrate), decompress
    import wsq  # noqa: F401
except ImportError:  # pragma: no cover - exercised only where the package is missing
    _wsq = None

SOI, EOI, SOF, SOB = 0xFFA0, 0xFFA1, 0xFFA2, 0xFFA3
DTT, DQT, DHT, DRT, COM = 0xFFA4, 0xFFA5, 0xFFA6, 0xFFA7, 0xFFA8
_TABLE_MARKERS = frozenset({DTT, DQT, DHT, DRT, COM})
_RESTART_MARKERS = frozenset(range(0xFFB0, 0xFFB8))
#: NBIS refuses images smaller than this in either direction (its wavelet tree needs 5 levels).
MIN_DIMENSION = 32
#: Largest image the station will hand NBIS: a 4-inch palm at 1000 ppi fits comfortably.
MAX_DIMENSION = 8000
BITRATE = 0.75
#: Longest a single decode may take before the decoder process is killed (a 1600x1500 slap
#: takes about 0.1 s on a desktop CPU, a few tenths on a Raspberry Pi 4).
DECODE_TIMEOUT_S = 30.0
#: The WSQ specification groups the 64 wavelet subbands into three entropy-coded blocks.
WSQ_BLOCKS = 3


@dataclass(frozen=True, slots=True)
class WsqHeader:
    """What the codestream's frame header and NISTCOM comment say, read without decoding."""

    width: int
    height: int
    ppi: int | None
    blocks: int


def encode_wsq(image: np.ndarray, ppi: int = 500) -> bytes:
    """Compress an 8-bit grayscale image (rows x columns) to WSQ at 0.75 bpp.

    ``ppi`` is recorded in the NISTCOM comment; WSQ itself is specified for 500 ppi.
    """
    codec = _codec()
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2:
        described = (f"{image.dtype} array of shape {image.shape}"
                     if isinstance(image, np.ndarray) else type(image).__name__)
        raise WsqError(f"WSQ encodes 2-D uint8 grayscale images only, got a {described}")
    rows, cols = image.shape
    if not (MIN_DIMENSION <= rows <= MAX_DIMENSION and MIN_DIMENSION <= cols <= MAX_DIMENSION):
        raise WsqError(f"image of {cols}x{rows} pixels is outside the WSQ encoder's "
                       f"{MIN_DIMENSION}..{MAX_DIMENSION} pixel range")
    if not isinstance(ppi, numbers.Integral) or not 1 <= ppi <= 99999:
        raise WsqError(f"resolution must be a positive whole number of ppi, not {ppi!r}")
    ppi = int(ppi)
    try:
        encoded = codec.compress(np.ascontiguousarray(image).tobytes(), rows, cols, BITRATE)
    except Exception as exc:  # the extension raises a bare Exception("WSQ Error: n")
        raise WsqError(f"NBIS WSQ encoder failed: {exc}") from exc
    return _set_nistcom_ppi(encoded, ppi)


def decode_wsq(data: bytes, *, isolate: bool = True) -> np.ndarray:
    """Decompress a WSQ codestream to a 2-D uint8 array (rows x columns).

    The codestream's structure is checked first (``read_wsq_header``). NBIS then decodes it in a
    separate decoder process, because corrupted entropy-coded data can make NBIS write past its
    buffer and take the whole process down (found by the fuzz tests). A crash or a decode that
    runs past ``DECODE_TIMEOUT_S`` becomes a ``WsqError`` and the next call starts a fresh
    decoder. ``isolate=False`` decodes in this process: only for codestreams this station
    encoded itself or otherwise trusts.
    """
    header = read_wsq_header(data)
    if isolate:
        pixels, cols, rows = _DECODER.decode(bytes(data))
    else:
        pixels, cols, rows = _decompress(bytes(data))
    if (cols, rows) != (header.width, header.height) or len(pixels) != rows * cols:
        raise WsqError(f"decoder returned {len(pixels)} pixels for a {header.width}x"
                       f"{header.height} frame")
    return np.frombuffer(bytearray(pixels), dtype=np.uint8).reshape(rows, cols)


def read_wsq_header(data: bytes) -> WsqHeader:
    """Walk every marker segment of a WSQ codestream and return its frame size and PPI.

    Raises ``WsqError`` naming the marker and offset of the first structural defect; a
    codestream that passes is safe to give to the NBIS decoder.
    """
    data = bytes(data)
    if len(data) < 4 or _u16(data, 0) != SOI:
        raise WsqError("not a WSQ codestream: it does not start with the SOI marker FFA0")
    pos, frame, ppi, blocks = 2, None, None, 0
    seen_tables: set[int] = set()
    while True:
        if pos + 2 > len(data):
            raise WsqError(f"codestream ends at offset {len(data)} without the EOI marker FFA1")
        marker = _u16(data, pos)
        if marker == EOI:
            break
        if marker not in _TABLE_MARKERS and marker not in (SOF, SOB):
            raise WsqError(f"unexpected marker {marker:04X} at offset {pos}")
        length = _segment_length(data, pos, marker)
        body = data[pos + 4:pos + 2 + length]
        if marker == SOF:
            if frame is not None:
                raise WsqError(f"second SOF frame header at offset {pos}")
            frame = _read_frame(body, pos)
        elif marker == COM:
            ppi = _nistcom_ppi(body) if ppi is None else ppi
        elif marker == SOB:
            if frame is None:
                raise WsqError(f"SOB block at offset {pos} comes before the SOF frame header")
            missing = {DTT, DQT, DHT} - seen_tables
            if missing:
                names = ", ".join(f"{m:04X}" for m in sorted(missing))
                raise WsqError(f"SOB block at offset {pos} comes before the tables {names}")
            blocks += 1
            pos = _skip_entropy_data(data, pos + 2 + length)
            continue
        else:
            _check_table(marker, body, pos)
            seen_tables.add(marker)
        pos += 2 + length
    if frame is None:
        raise WsqError("codestream has no SOF frame header")
    if blocks != WSQ_BLOCKS:
        # The 64 subbands travel in exactly three blocks; NBIS crashed on fewer in our fuzzing.
        raise WsqError(f"codestream has {blocks} SOB blocks, WSQ has {WSQ_BLOCKS}")
    if pos + 2 != len(data):
        raise WsqError(f"{len(data) - pos - 2} bytes follow the EOI marker")
    width, height = frame
    return WsqHeader(width=width, height=height, ppi=ppi, blocks=blocks)


# -- the decoder process -----------------------------------------------------------------------


def _decompress(data: bytes) -> tuple[bytes, int, int]:
    try:
        pixels, cols, rows, _ppi = _codec().decompress(data)
    except WsqError:
        raise
    except Exception as exc:  # the extension raises a bare Exception("WSQ Error: n")
        raise WsqError(f"NBIS WSQ decoder rejected the codestream: {exc}") from exc
    return pixels, cols, rows


class _DecoderProcess:
    """One long-lived decoder process (``wsq_decoder.py``).

    It is replaced whenever a codestream crashes or hangs it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def decode(self, data: bytes) -> tuple[bytes, int, int]:
        with self._lock:
            process = self._running()
            deadline = time.monotonic() + DECODE_TIMEOUT_S
            try:
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(struct.pack(">I", len(data)) + data)
                process.stdin.flush()
                status = self._read(process.stdout, 1, deadline)
                if status == b"E":
                    size = struct.unpack(">I", self._read(process.stdout, 4, deadline))[0]
                    message = self._read(process.stdout, size, deadline).decode("utf-8", "replace")
                    raise WsqError(f"NBIS WSQ decoder rejected the codestream: {message}")
                if status != b"O":
                    raise WsqError(f"WSQ decoder process answered {status!r}")
                cols, rows, size = struct.unpack(">III", self._read(process.stdout, 12, deadline))
                return self._read(process.stdout, size, deadline), cols, rows
            except (OSError, EOFError) as exc:
                self._stop()
                raise WsqError("the NBIS decoder crashed on this codestream") from exc
            except TimeoutError as exc:
                self._stop()
                raise WsqError(f"WSQ decoding took longer than {DECODE_TIMEOUT_S} s") from exc
            except WsqError:
                if process.poll() is not None:
                    self._stop()
                raise

    @staticmethod
    def _read(stream, size: int, deadline: float) -> bytes:
        chunks, remaining = [], size
        fd = stream.fileno()
        while remaining:
            left = deadline - time.monotonic()
            poller = select.poll()  # not select(): it refuses descriptors >= 1024
            poller.register(fd, select.POLLIN)
            if left <= 0 or not poller.poll(left * 1000.0):
                raise TimeoutError
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Stop the decoder process (at exit; the next decode would start a new one)."""
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            script = Path(__file__).with_name("wsq_decoder.py")
            self._process = subprocess.Popen(
                [sys.executable, "-I", str(script)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


_DECODER = _DecoderProcess()
atexit.register(_DECODER.close)


# -- helpers ----------------------------------------------------------------------------------


def _codec():
    if _wsq is None:  # pragma: no cover
        raise WsqError("the 'wsq' package (NBIS WSQ codec) is not installed")
    return _wsq


def _u16(data: bytes, pos: int) -> int:
    return (data[pos] << 8) | data[pos + 1]


def _segment_length(data: bytes, pos: int, marker: int) -> int:
    if pos + 4 > len(data):
        raise WsqError(f"codestream ends inside the length of marker {marker:04X} at {pos}")
    length = _u16(data, pos + 2)
    if length < 2 or pos + 2 + length > len(data):
        raise WsqError(f"marker {marker:04X} at offset {pos} declares {length} bytes, "
                       f"{len(data) - pos - 2} remain")
    return length


def _read_frame(body: bytes, pos: int) -> tuple[int, int]:
    # A(1) B(1) Y(2) X(2) Em(1) M(2) Er(1) R(2) software(2): 15 bytes after the length.
    if len(body) != 15:
        raise WsqError(f"SOF frame header at offset {pos} has {len(body)} bytes, expected 15")
    height, width = _u16(body, 2), _u16(body, 4)
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise WsqError(f"SOF frame header at offset {pos} gives a {width}x{height} image")
    return width, height


def _check_table(marker: int, body: bytes, pos: int) -> None:
    if marker == DHT:
        # One or more tables: id(1), 16 code-length counts, then that many symbol values.
        i = 0
        if not body:
            raise WsqError(f"empty DHT Huffman table at offset {pos}")
        while i < len(body):
            if i + 17 > len(body):
                raise WsqError(f"DHT Huffman table at offset {pos} is cut short")
            table_id, counts = body[i], body[i + 1:i + 17]
            values = sum(counts)
            if table_id > 7 or values > 256 or i + 17 + values > len(body):
                raise WsqError(f"DHT Huffman table {table_id} at offset {pos} is malformed")
            i += 17 + values
    elif marker == DTT and len(body) < 2:
        raise WsqError(f"DTT transform table at offset {pos} is too short")
    elif marker == DQT and len(body) != 3 + 64 * 6:
        # Bin centre (scale 1, value 2), then 64 subbands x (Q, Z) x (scale 1, value 2).
        raise WsqError(f"DQT quantization table at offset {pos} has {len(body)} bytes, "
                       f"expected {3 + 64 * 6}")
    elif marker == DRT and len(body) != 2:
        raise WsqError(f"DRT restart interval at offset {pos} has {len(body)} bytes")


def _skip_entropy_data(data: bytes, pos: int) -> int:
    """Offset of the next marker after a block's entropy-coded data (0xFF00 is a stuffed 0xFF)."""
    while True:
        ff = data.find(b"\xff", pos)
        if ff < 0 or ff + 1 >= len(data):
            raise WsqError("codestream ends inside entropy-coded data, without EOI")
        follower = data[ff + 1]
        marker = 0xFF00 | follower
        if follower == 0x00 or marker in _RESTART_MARKERS:
            pos = ff + 2
            continue
        return ff


def _nistcom_ppi(body: bytes) -> int | None:
    if not body.startswith(b"NIST_COM"):
        return None
    for line in body.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"PPI":
            try:
                return int(value.strip(b"\x00").strip())
            except ValueError:
                return None
    return None


def _set_nistcom_ppi(data: bytes, ppi: int) -> bytes:
    """Rewrite the PPI line of the NISTCOM comment NBIS wrote right after SOI."""
    pos = 2
    if _u16(data, pos) != COM:
        return data
    length = _u16(data, pos + 2)
    body = data[pos + 4:pos + 2 + length]
    if not body.startswith(b"NIST_COM"):
        return data
    lines = [b"PPI %d" % ppi if line.startswith(b"PPI ") else line for line in body.split(b"\n")]
    new_body = b"\n".join(lines)
    if new_body == body:
        return data
    return data[:pos] + COM.to_bytes(2, "big") + (len(new_body) + 2).to_bytes(2, "big") + \
        new_body + data[pos + 2 + length:]
