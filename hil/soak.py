"""Soak a scanner: thousands of captures over hours, memory and latency tracked and plotted.

    .venv/bin/python hil/soak.py --scanner serial:///dev/fpscanner --captures 5000 --hours 4
    .venv/bin/python hil/soak.py --scanner usb:05ba:000a --hours 8 --out soak-uareu
    .venv/bin/python hil/soak.py --scanner usb:emulator --captures 2000      (a dry run)

Captures go through the station's own ``DeviceWorker`` (the owner thread, its reopen and reset
logic), as in service. Every capture's latency, outcome and this process's resident memory are
written to ``OUT/captures.csv`` as they happen (nothing is lost if the run is cut short), and
``OUT/soak.png`` plots memory and latency against time. The run stops after ``--captures`` or
``--hours``, whichever comes first; Ctrl-C stops it early and still plots.

What passing looks like: the memory curve flattens after the first minutes (no upward slope
over hours), the latency's rolling median stays level, and errors, if any, are followed by
successful captures without a restart. The summary line says so in numbers.

Needs the ``hil`` extra (matplotlib): ``.venv/bin/pip install -e '.[hil]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scanners import scanner_under_test  # noqa: E402

from drivers.base import CaptureMode  # noqa: E402
from drivers.errors import ScannerError  # noqa: E402
from drivers.worker import DeviceWorker  # noqa: E402

FIELDS = ("n", "elapsed_s", "latency_s", "ok", "error", "rss_mb")


@dataclass
class Sample:
    n: int
    elapsed_s: float
    latency_s: float
    ok: bool
    error: str
    rss_mb: float


def rss_mb() -> float:
    """This process's resident memory (the driver, its library and the worker live here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def soak(spec: str, captures: int, hours: float, mode: CaptureMode | None,
               out: Path) -> list[Sample]:
    """Capture until ``captures`` or ``hours``; write each sample to the CSV as it comes."""
    under_test = scanner_under_test(spec)
    if under_test.absent_reason:
        raise SystemExit(f"soak: {under_test.absent_reason}")
    worker = DeviceWorker(under_test.factory())
    worker.start()
    samples: list[Sample] = []
    try:
        await worker.wait_ready(timeout=60)
        chosen = mode or sorted(worker.capabilities.modes)[0]
        print(f"soak: {spec}, mode {chosen}, up to {captures} captures or {hours} h; "
              f"writing {out / 'captures.csv'}")
        started = time.monotonic()
        with (out / "captures.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(FIELDS)
            for n in range(1, captures + 1):
                if time.monotonic() - started > hours * 3600:
                    break
                t0 = time.monotonic()
                error = ""
                try:
                    await worker.capture(chosen)
                except ScannerError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                sample = Sample(n, time.monotonic() - started, time.monotonic() - t0,
                                not error, error, rss_mb())
                samples.append(sample)
                writer.writerow([sample.n, f"{sample.elapsed_s:.3f}", f"{sample.latency_s:.4f}",
                                 int(sample.ok), sample.error, f"{sample.rss_mb:.1f}"])
                fh.flush()
                if error:
                    await asyncio.sleep(1.0)  # let the worker reopen or reset the device
                if n % 100 == 0:
                    print(f"  {n} captures, {sample.elapsed_s / 60:.1f} min, "
                          f"RSS {sample.rss_mb:.0f} MB")
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
    return samples


def rolling_median(values: list[float], window: int) -> list[float]:
    return [statistics.median(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]


def plot(samples: list[Sample], title: str, path: Path) -> None:
    """Memory and latency against time, one panel each, errors marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.elapsed_s / 60 for s in samples]
    fig, (mem, lat) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    mem.plot(minutes, [s.rss_mb for s in samples], color="tab:blue", linewidth=1)
    mem.set_ylabel("resident memory (MB)")
    mem.set_title(title)
    mem.grid(alpha=0.3)
    latencies = [s.latency_s for s in samples]
    lat.plot(minutes, latencies, ".", markersize=2, color="tab:gray", label="each capture")
    lat.plot(minutes, rolling_median(latencies, 51), color="tab:orange",
             label="rolling median (51)")
    failed = [s for s in samples if not s.ok]
    if failed:
        lat.plot([s.elapsed_s / 60 for s in failed], [s.latency_s for s in failed], "x",
                 color="tab:red", label=f"errors ({len(failed)})")
    lat.set_ylabel("capture latency (s)")
    lat.set_xlabel("minutes")
    lat.grid(alpha=0.3)
    lat.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(samples: list[Sample]) -> str:
    """The numbers behind the plot: growth of memory, drift of latency, errors."""
    ok = [s for s in samples if s.ok]
    if len(ok) < 20:
        return f"{len(samples)} captures, {len(ok)} good: too few to judge"
    tenth = max(1, len(ok) // 10)
    first, last = ok[:tenth], ok[-tenth:]
    grow = statistics.median(s.rss_mb for s in last) - statistics.median(s.rss_mb for s in first)
    lat_first = statistics.median(s.latency_s for s in first)
    lat_last = statistics.median(s.latency_s for s in last)
    return (f"{len(samples)} captures in {samples[-1].elapsed_s / 60:.1f} min, "
            f"{len(samples) - len(ok)} errors; resident memory {ok[0].rss_mb:.0f} -> "
            f"{ok[-1].rss_mb:.0f} MB (median of the last tenth minus the first: {grow:+.1f} MB); "
            f"latency median {lat_first * 1000:.0f} ms first tenth, {lat_last * 1000:.0f} ms "
            f"last tenth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scanner", required=True, help="device spec, as for pytest hil")
    parser.add_argument("--captures", type=int, default=5000)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--mode", choices=[m.value for m in CaptureMode], default=None,
                        help="capture mode (default: the first the device declares)")
    parser.add_argument("--out", type=Path, default=Path(time.strftime("soak-%Y%m%d-%H%M")))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    mode = CaptureMode(args.mode) if args.mode else None
    samples = asyncio.run(soak(args.scanner, args.captures, args.hours, mode, args.out))
    if not samples:
        print("soak: no capture was taken", file=sys.stderr)
        return 1
    plot(samples, f"soak: {args.scanner}", args.out / "soak.png")
    print(summary(samples))
    print(f"plot: {args.out / 'soak.png'}")
    return 0 if all(s.ok for s in samples[-10:]) else 1


if __name__ == "__main__":
    sys.exit(main())
