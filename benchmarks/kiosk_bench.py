"""The kiosk as the officer sees it: preview frames into the page, their latency, the waits.

    .venv/bin/python benchmarks/kiosk_bench.py [--seconds 10] [--bookings 2]

Starts the station in this process (emulated ten-print livescan, flats, a Mosquitto process on a
free port with the demo's passwords) and drives the kiosk page in Debian's Chromium (headless,
1280 x 800) as an officer would, over the real sockets. The page is instrumented from outside
(an init script; the page's own code is unchanged): it notes when each preview JPEG arrives on
the websocket, when the page has decoded it, and the station's ``captured_at`` of that frame.

Measured, side by side with the station's own figures in the same run:

* preview frames per second painted in the page over ``--seconds`` of a slap step, against
  ``web.preview_fps`` (the rate the station aims at) and the frames the station sent;
* sensor-to-paint latency: from the moment the station had the frame from the scanner to the
  page's image ``load`` event and the animation frame after it (median, 95th percentile, most);
* the officer's waits: Capture pressed to the verdict shown (every print), and the last Accept
  to the review screen with every thumbnail loaded (each booking).

Browser and station share this machine's cores; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time

from benchstation import bench_station

from appliance.app import Station
from demo.run import prepare_officer

OFFICER, PIN = "bench", "246810"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Runs in the page before its own script: notes each preview frame's arrival, decode and paint.
PROBE = """
(() => {
  const probe = window.__probe = { frames: [], byBlob: new Map(), byUrl: new Map() };
  const Native = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    if (String(url).endsWith("/ws/preview")) {
      ws.addEventListener("message", (ev) => {
        const now = performance.timeOrigin + performance.now();
        if (typeof ev.data === "string") {
          const msg = JSON.parse(ev.data);
          const last = probe.frames[probe.frames.length - 1];
          if (msg.type === "live" && last && last.captured === undefined) {
            last.captured = msg.captured_at * 1000;
          }
        } else {
          const frame = { arrived: now };
          probe.frames.push(frame); probe.byBlob.set(ev.data, frame);
        }
      });
    }
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
  const createObjectURL = URL.createObjectURL;
  URL.createObjectURL = (obj) => {
    const url = createObjectURL(obj);
    const frame = probe.byBlob.get(obj);
    if (frame) { probe.byUrl.set(url, frame); probe.byBlob.delete(obj); }
    return url;
  };
  document.addEventListener("load", (ev) => {
    const img = ev.target;
    if (!(img instanceof HTMLImageElement) || img.id !== "preview") return;
    const frame = probe.byUrl.get(img.src);
    if (!frame) return;
    probe.byUrl.delete(img.src);
    frame.loaded = performance.timeOrigin + performance.now();
    requestAnimationFrame(() => { frame.painted = performance.timeOrigin + performance.now(); });
  }, true);
})();
"""


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered):.0f} ms, 95th percentile {p95:.0f} ms, "
            f"most {ordered[-1]:.0f} ms over {len(ordered)}")


async def take_booking(page, number: str) -> tuple[list[float], float]:
    """One flats booking on the page: the verdict waits, and last Accept to the review."""
    await page.fill("#booking-number", number)
    await page.click("#start")
    await page.wait_for_selector("#capture-panel:not([hidden])")
    verdicts: list[float] = []
    review = 0.0
    while True:
        started = time.perf_counter()
        await page.click("#capture")
        await page.wait_for_selector("#verdict:not([hidden])")
        await page.wait_for_selector("#retake:not([hidden])")
        verdicts.append(time.perf_counter() - started)
        started = time.perf_counter()
        if await page.is_visible("#accept-override"):
            await page.click("#accept-override")
            await page.check("input[name=ask-reason] >> nth=0")
            await page.click("#ask-ok")
        else:
            await page.click("#accept")
        await page.wait_for_selector("#retake", state="hidden")
        await page.wait_for_selector("#review-panel:not([hidden]), #capture:not([hidden])")
        if await page.is_visible("#review-panel"):
            thumbs = page.locator("#thumbs figure img")
            while await thumbs.count() < 3 or not all(
                    await thumbs.evaluate_all("els => els.map((e) => e.complete)")):
                await asyncio.sleep(0.01)
            review = time.perf_counter() - started
            break
    await page.click("#submit")
    await page.wait_for_selector("#start-panel:not([hidden])")
    return verdicts, review


async def run(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    print(f"before: {loadavg()}", flush=True)
    async with bench_station(lambda creds: prepare_officer(creds, OFFICER, PIN),
                             mqtt={"allow_unsigned_acks": True},
                             capture={"auto_capture": False}) as station, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu",
                                                 "--no-first-run"])
        context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                            bypass_csp=True)
        await context.add_init_script(PROBE)
        page = await context.new_page()
        page.set_default_timeout(120_000)
        await page.goto(f"http://127.0.0.1:{station.web_port}/")
        await page.fill("#officer-id", OFFICER)
        await page.fill("#officer-pin", PIN)
        await page.click("#signin")
        await page.wait_for_selector("#start-panel:not([hidden])")
        await figures_of_the_preview(page, station, args.seconds)
        verdicts, reviews = [], []
        for n in range(args.bookings):
            waits, review = await take_booking(page, f"BK-BENCH-{n}")
            verdicts += waits
            reviews.append(review)
        print("Capture pressed to the verdict shown: " + spread([v * 1000 for v in verdicts]))
        print("last Accept to the review screen, thumbnails loaded: "
              + spread([r * 1000 for r in reviews]))
        await browser.close()
    print(f"after: {loadavg()}", flush=True)
    return 0


async def figures_of_the_preview(page, station: Station, seconds: float) -> None:
    """Frames painted per second on a slap step, and each frame's sensor-to-paint latency."""
    await page.fill("#booking-number", "BK-BENCH-PREVIEW")
    await page.click("#start")
    await page.wait_for_selector("#capture-panel:not([hidden])")
    await page.wait_for_function("() => window.__probe.frames.some((f) => f.painted)")
    await page.evaluate("() => { window.__probe.frames.length = 0; }")
    await asyncio.sleep(seconds)
    frames = await page.evaluate("() => window.__probe.frames.map((f) => [f.captured || 0, "
                                 "f.arrived || 0, f.loaded || 0, f.painted || 0])")
    painted = [f for f in frames if f[3] and f[0]]
    window = (max(f[3] for f in painted) - min(f[3] for f in painted)) / 1000 if painted else 0
    fps = (len(painted) - 1) / window if window > 0 else 0.0
    aim = station.config.web.preview_fps
    print(f"preview into the page over {seconds:.0f} s: {len(frames)} frames arrived, "
          f"{len(painted)} painted, {fps:.1f} painted per second; the station aims at "
          f"{aim:.0f} (web.preview_fps): ratio {fps / aim:.2f}")
    print("sensor to arrival in the page: " + spread([f[1] - f[0] for f in painted]))
    print("sensor to decoded image:       " + spread([f[2] - f[0] for f in painted]))
    print("sensor to paint:               " + spread([f[3] - f[0] for f in painted]))
    await page.click("#cancel")
    await page.click("#ask-ok")
    await page.wait_for_selector("#start-panel:not([hidden])")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bookings", type=int, default=2)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
