"""``booking-station scanner ...``: the technician's scanner tools.

List what is plugged in, show the configured scanner's identity and capabilities, take a test
capture to PNG, and measure the live preview frame rate. The scanner is driven through the same
DeviceWorker the station uses, so what these tools see is what the station sees.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, TextIO

from appliance.config import StationConfig
from drivers.base import CaptureMode
from drivers.registry import build_driver, driver_types
from drivers.worker import DeviceWorker

DIGITALPERSONA_VENDOR = 0x05BA


def list_devices() -> dict[str, Any]:
    """Installed driver types, serial ports and DigitalPersona USB readers present."""
    from serial.tools import list_ports

    ports = [{"device": p.device, "description": p.description, "hwid": p.hwid}
             for p in list_ports.comports()]
    by_id = sorted(str(p) for p in Path("/dev/serial/by-id").glob("*")) \
        if Path("/dev/serial/by-id").is_dir() else []
    usb_devices: list[dict[str, Any]] | str
    try:
        import usb.core

        usb_devices = [{"vendor": f"{d.idVendor:04x}", "product": f"{d.idProduct:04x}",
                        "bus": d.bus, "address": d.address}
                       for d in usb.core.find(find_all=True, idVendor=DIGITALPERSONA_VENDOR)]
    except Exception as exc:  # no libusb backend on this machine: say so, do not fail
        usb_devices = f"USB not available: {exc}"
    return {
        "driver_types": driver_types(),
        "serial_ports": ports,
        "serial_by_id": by_id,
        "usb_digitalpersona": usb_devices,
    }


async def _with_worker(config: StationConfig, fn: Any) -> Any:
    worker = DeviceWorker(build_driver(config.scanner))
    worker.start()
    try:
        await worker.wait_ready(timeout=30)
        return await fn(worker)
    finally:
        await asyncio.to_thread(worker.stop)


def scanner_command(config: StationConfig, action: str, *, out: Path | None = None,
                    mode: str | None = None, seconds: float = 3.0,
                    stdout: TextIO | None = None) -> int:
    """Run one scanner tool; prints JSON; returns the exit code."""
    import sys

    stdout = stdout or sys.stdout
    if action == "list":
        print(json.dumps(list_devices(), indent=2), file=stdout)
        return 0

    async def info(worker: DeviceWorker) -> dict[str, Any]:
        ident = worker.identity
        return {"name": worker.driver.name, "vendor": ident.vendor, "model": ident.model,
                "serial": ident.serial, "firmware": ident.firmware,
                "capabilities": worker.capabilities.as_dict()}

    async def pick_mode(worker: DeviceWorker) -> CaptureMode:
        if mode is not None:
            return CaptureMode(mode)
        return sorted(worker.capabilities.modes)[0]

    async def capture(worker: DeviceWorker) -> dict[str, Any]:
        from PIL import Image

        chosen = await pick_mode(worker)
        await worker.call(lambda d: d.guide(2))
        started = time.perf_counter()
        frame = await worker.capture(chosen)
        elapsed = time.perf_counter() - started
        assert out is not None
        Image.fromarray(frame.image).save(out)
        return {"file": str(out), "mode": chosen.value, "width": frame.image.shape[1],
                "height": frame.image.shape[0], "ppi": frame.ppi,
                "capture_s": round(elapsed, 3)}

    async def fps(worker: DeviceWorker) -> dict[str, Any]:
        chosen = await pick_mode(worker)
        await worker.call(lambda d: d.guide(2))
        declared = worker.capabilities.preview_fps
        frames = -1  # the first frame is the warm-up (finger coming down), not counted
        opened = time.perf_counter()
        started = opened
        async for _frame in worker.preview(chosen, fps=max(declared, 1.0)):
            frames += 1
            if frames == 0:
                started = time.perf_counter()
            elif time.perf_counter() - started >= seconds:
                break
        elapsed = time.perf_counter() - started
        return {"mode": chosen.value, "frames": frames, "seconds": round(elapsed, 2),
                "first_frame_s": round(started - opened, 3),
                "measured_fps": round(frames / elapsed, 2), "declared_fps": declared}

    actions = {"info": info, "capture": capture, "fps": fps}
    if action == "capture" and out is None:
        print("scanner capture needs --out FILE.png", file=stdout)
        return 2
    result = asyncio.run(_with_worker(config, actions[action]))
    print(json.dumps(result, indent=2), file=stdout)
    return 0
