"""Emulated livescan through the DeviceWorker: preview rate, capture latency, hot-plug times.

    .venv/bin/python benchmarks/scanner_bench.py [--source synthetic|pattern] [--seconds 3]

Prints the preview frame rate reached against the declared rate, capture latency per mode
(median of 5), and the time from unplug to ``disconnected`` and from replug to ``ready``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from drivers.base import CaptureMode
from drivers.emulated import EmulatedConfig, EmulatedFaults, EmulatedLivescan
from drivers.errors import ScannerDisconnected
from drivers.worker import DeviceWorker, ScannerState


async def main(source: str, seconds: float) -> None:
    driver = EmulatedLivescan(EmulatedConfig(image_source=source, faults=EmulatedFaults()))
    worker = DeviceWorker(driver, reopen_min_s=0.05, reopen_max_s=0.5)
    worker.start()
    await worker.wait_ready(30)
    await worker.call(lambda d: d.guide(2))
    print(f"source: {source}")
    for mode in (CaptureMode.ROLLED, CaptureMode.FLAT_FOUR):
        frames, started = -1, 0.0
        async for _ in worker.preview(mode, fps=driver.capabilities().preview_fps):
            frames += 1
            if frames == 0:
                started = time.perf_counter()
            elif time.perf_counter() - started >= seconds:
                break
        rate = frames / (time.perf_counter() - started)
        print(f"preview {mode.value:10s}: {rate:6.1f} fps (declared "
              f"{driver.capabilities().preview_fps:.0f})")
        latencies = []
        for _ in range(5):
            t = time.perf_counter()
            await worker.capture(mode)
            latencies.append(time.perf_counter() - t)
        print(f"capture {mode.value:10s}: median {statistics.median(latencies) * 1000:7.1f} ms")
    # hot-plug: pull the cable on the next capture, then plug it back
    driver.config = driver.config.model_copy(
        update={"faults": EmulatedFaults(unplug_after_captures=0)})
    t = time.perf_counter()
    try:
        await worker.capture(CaptureMode.ROLLED)
    except ScannerDisconnected:
        pass
    while worker.state is not ScannerState.DISCONNECTED:
        await asyncio.sleep(0.001)
    print(f"unplug -> disconnected: {(time.perf_counter() - t) * 1000:7.1f} ms")
    driver.config = driver.config.model_copy(update={"faults": EmulatedFaults()})
    t = time.perf_counter()
    driver.replug()
    while worker.state is not ScannerState.READY:
        await asyncio.sleep(0.001)
    print(f"replug -> ready:        {(time.perf_counter() - t) * 1000:7.1f} ms "
          "(the worker polls an absent device with backoff from 50 ms)")
    await asyncio.to_thread(worker.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default="pattern", choices=["synthetic", "pattern"])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main(args.source, args.seconds))
