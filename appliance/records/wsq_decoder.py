"""The WSQ decoder process: runs NBIS on codestreams that may crash it.

``appliance.records.wsq`` starts this file as a script (``python -I wsq_decoder.py``), not as a
module of the package, so the process imports nothing but the NBIS extension and is not
affected by how the parent was started. Framing on stdin/stdout, all integers big-endian::

    request   4 length | codestream
    reply ok  b"O" | 4 columns | 4 rows | 4 length | pixels (rows x columns bytes)
    reply err b"E" | 4 length | UTF-8 message

The loop ends when stdin closes.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """Answer decode requests until ``source`` closes."""
    import _wsq  # the ``wsq`` package's NBIS extension

    while True:
        header = _read_exact(source, 4)
        if header is None:
            return
        data = _read_exact(source, struct.unpack(">I", header)[0])
        if data is None:
            return
        try:
            pixels, cols, rows, _ppi = _wsq.decompress(data)
        except Exception as exc:  # the extension raises a bare Exception("WSQ Error: n")
            message = str(exc).encode("utf-8")
            sink.write(b"E" + struct.pack(">I", len(message)) + message)
        else:
            sink.write(b"O" + struct.pack(">III", cols, rows, len(pixels)) + pixels)
        sink.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
