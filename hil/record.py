"""Record a session with a real scanner, for replay in tests (see hil/recording.py).

    .venv/bin/python hil/record.py --scanner serial:///dev/fpscanner --out r503-capture.jsonl
    .venv/bin/python hil/record.py --scanner usb:05ba:000a --captures 2 --out u4500.jsonl

Opens the device, reads its identity and capabilities, takes ``--captures`` captures (a finger
must rest on the glass) and closes it, recording every byte or transfer. Copy the file to
``tests/fixtures/sessions/`` and name it after the device and firmware; the replay test
(tests/system/test_recorded_sessions.py) then runs the driver against it on every test run.
A recording holds a real fingerprint: record with a test finger whose owner agreed, never
with a subject's.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recording import RecordingBackend, parse_spy_log, write_session  # noqa: E402

from drivers.base import CaptureMode, ScannerDriver  # noqa: E402


def _session(driver: ScannerDriver, captures: int, mode: CaptureMode | None) -> dict[str, Any]:
    """Open, identify, capture, close; returns what the device said about itself."""
    driver.open()
    try:
        identity = driver.identity()
        capabilities = driver.capabilities()
        chosen = mode or sorted(capabilities.modes)[0]
        images = [driver.capture(chosen).image for _ in range(captures)]
    finally:
        driver.close()
    return {"identity": str(identity), "mode": str(chosen),
            "image_shapes": [list(image.shape) for image in images],
            "image_sha256": [image_digest(image) for image in images]}


def image_digest(image: Any) -> str:
    """sha256 of a captured image's pixels: a replay must give the very same image."""
    return hashlib.sha256(image.tobytes()).hexdigest()


def record_serial(port: str, captures: int, mode: CaptureMode | None,
                  **options: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A session with an R30x-family module on ``port`` (a tty), through pyserial's spy://."""
    from drivers.r30x import R30xConfig, R30xDriver

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "spy.txt"
        spied = f"spy://{port}?file={urllib.parse.quote(str(log))}"
        device = _session(R30xDriver(R30xConfig(port=spied, **options)), captures, mode)
        events = parse_spy_log(log.read_text())
    return {"session": "serial", "driver": "r30x", "options": options, "device": device}, events


def record_usb(inner_backend: Any, product_id: int, captures: int, mode: CaptureMode | None,
               **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A session with a U.are.U reader through ``inner_backend`` (libusb1 on hardware)."""
    from drivers.uareu import UareUConfig, UareUDriver

    backend = RecordingBackend(inner_backend)
    config = UareUConfig(product_id=product_id, **options)
    device = _session(UareUDriver(config, backend=backend), captures, mode)
    return ({"session": "usb", "driver": "uareu", "product_id": product_id, "options": options,
             "device": device}, backend.events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scanner", required=True,
                        help="serial:///dev/ttyUSB0[?baudrate=..] or usb:05ba:<product>")
    parser.add_argument("--captures", type=int, default=1)
    parser.add_argument("--mode", choices=[m.value for m in CaptureMode], default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    mode = CaptureMode(args.mode) if args.mode else None
    kind, _, rest = args.scanner.partition(":")
    target, _, query = rest.removeprefix("//").partition("?")
    options = dict(urllib.parse.parse_qsl(query))
    if kind == "serial":
        header, events = record_serial(target, args.captures, mode, **options)
    elif kind == "usb":
        import usb.backend.libusb1

        inner = usb.backend.libusb1.get_backend()
        if inner is None:
            print("record: libusb-1.0 is not installed", file=sys.stderr)
            return 2
        header, events = record_usb(inner, int(target.partition(":")[2], 16), args.captures,
                                    mode, **options)
    else:
        print(f"record: unknown scanner spec {args.scanner!r}", file=sys.stderr)
        return 2
    header["spec"] = args.scanner
    write_session(args.out, header, events)
    print(f"record: {len(events)} exchanges from {header['device']['identity']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
