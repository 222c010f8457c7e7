"""Image upload time over the R30x serial line, against what the line itself allows.

The pty emulator paces its bytes at the baud rate (10 bit times a byte: start, 8 data, stop),
and the real driver reads them on the other side of a pseudo-terminal. For each baud rate this
prints the bytes one ``UpImage`` puts on the wire, the line's limit (bytes x 10 / baud), the
measured upload time (UpImage sent -> end-of-data packet checked) and the ratio of the two; a
ratio near 1.00 means the driver adds nothing to the line's own time. On hardware the USB-UART
adapter's latency comes on top.

    .venv/bin/python benchmarks/serial_bench.py [--bauds 57600 115200] [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from drivers.base import CaptureMode
from drivers.r30x import R30xConfig, R30xDriver
from drivers.r30x.codec import upload_wire_bytes
from drivers.r30x.emulator import R30xEmulator, R30xEmulatorConfig


def measure(baud: int, packet_size: int, repeat: int) -> dict[str, float]:
    config = R30xEmulatorConfig(baudrate=baud, pace=True, packet_size=packet_size,
                                finger_source="pattern")
    with tempfile.TemporaryDirectory() as folder:
        emulator = R30xEmulator.on_pty(config, link=Path(folder) / "r30x").start()
        try:
            wire = upload_wire_bytes(packet_size)
            limit = wire * 10 / baud
            driver = R30xDriver(R30xConfig(port=emulator.port, baudrate=baud,
                                           timeout_s=2.0 + 3 * limit))
            driver.open()
            uploads = []
            for _ in range(repeat):
                frame = driver.capture(CaptureMode.FLAT_SINGLE)
                assert frame.meta["upload_wire_bytes"] == wire
                uploads.append(frame.meta["upload_s"])
            driver.close()
        finally:
            emulator.stop()
    upload = statistics.median(uploads)
    return {"wire": wire, "limit": limit, "upload": upload, "ratio": upload / limit,
            "fps": 1 / upload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bauds", type=int, nargs="+", default=[57600, 115200])
    parser.add_argument("--packet-size", type=int, default=128, choices=[32, 64, 128, 256])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"R30x UpImage over a paced pty, packet size {args.packet_size}, "
          f"median of {args.repeat}")
    print(f"{'baud':>7} {'wire bytes':>10} {'line limit s':>12} {'measured s':>10} "
          f"{'ratio':>6} {'max fps':>7}")
    for baud in args.bauds:
        r = measure(baud, args.packet_size, args.repeat)
        print(f"{baud:>7} {r['wire']:>10.0f} {r['limit']:>12.3f} {r['upload']:>10.3f} "
              f"{r['ratio']:>6.3f} {r['fps']:>7.3f}")


if __name__ == "__main__":
    main()
