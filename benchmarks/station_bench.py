"""The whole station on one machine: booking processing time after the last capture, memory.

    .venv/bin/python benchmarks/station_bench.py [--bookings 3] [--together] [--scanner-process]
                                                 [--keep-model-memory] [--mmap-threshold-kb N]

Runs the station in this process with the emulated livescan, takes ten-print bookings through the
booking service, and reports for each: the time from the last accepted print to the booking being
committed (sequence check, segmentation reuse, WSQ, transaction, validation, encrypted commit),
and this process's peak resident memory (VmHWM), against the design budgets of 2 s and 300 MB.
It also reports the resident memory (VmRSS) right after start, and once the bookings are sent,
how long central took to acknowledge all of them and the peak after sending.

Two modes:

* default (apart): a Mosquitto process on a free port and the reference receiver
  (``python -m central.cli run``) in a child process, as in production where the broker and
  central are remote. This process then holds only the station and the emulated scanner. The
  emulator's print generator (drivers.synthetic) still runs here, which a station with a real
  scanner does not: the last line gives the bytes of the master fingers it holds at the end
  (not its transient working memory while drawing a hand, which VmHWM includes).
* ``--together``: the reference receiver in this process too, as the demo runs it (a Mosquitto
  process is the broker either way); VmHWM then covers the station and the receiver.

``--scanner-process`` draws the emulated scanner's prints in a child process (the emulator's
``process = true``, :mod:`drivers.isolated`), as a real scanner images in its own hardware: this
process then holds what a station with a real scanner holds, and the child's own peak is printed
apart. It combines with either mode.

``--keep-model-memory`` turns off ``minutiae.release_memory`` (onnxruntime then keeps the
largest extraction's buffers allocated), to compare.

``--mmap-threshold-kb 0`` runs with glibc's default allocator settings instead of the station's
(``system.malloc_mmap_threshold_kb``, see appliance/system/memory.py), to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # demo/ is not installed

from procmem import status_mb  # noqa: E402

from appliance.app import Station  # noqa: E402
from appliance.config import StationConfig  # noqa: E402
from demo.autopilot import take_print  # noqa: E402
from demo.broker import Broker, demo_broker  # noqa: E402
from demo.run import (  # noqa: E402
    CENTRAL_USER,
    MQTT_PASSWORD_CREDENTIAL,
    CentralIdentity,
    prepare_central,
    prepare_state,
)

STATION_ID = "bench"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    return status_mb("VmHWM")


def masters_held() -> tuple[int, float]:
    """The emulator's master fingers alive in this process: how many, and their arrays in MB."""
    from drivers.synthetic.master import MasterFinger

    masters = [o for o in gc.get_objects() if isinstance(o, MasterFinger)]
    held = sum(a.nbytes for m in masters for a in (m.ridges, m.mask, m.period, m.skin))
    return len(masters), held / 2**20


@contextlib.asynccontextmanager
async def receiver_process(directory: Path, broker: Broker, central: CentralIdentity
                           ) -> AsyncIterator[int]:
    """The reference receiver in a child process; yields its pid once it is subscribed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "central.cli", "run", "--host", broker.host,
        "--port", str(broker.port), "--dir", str(directory), "--key", str(central.signing_key),
        "--username", CENTRAL_USER, "--password-file",
        str(central.signing_key.parent / "mqtt-password"), stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"central receiver: listening"):
            raise RuntimeError(f"central receiver did not start: {line!r}")
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.communicate()


@contextlib.asynccontextmanager
async def broker_and_receiver(state: Path, together: bool, central: CentralIdentity
                              ) -> AsyncIterator[Broker]:
    """The broker (the demo's: passwords and the ACL) and the reference receiver, signing its
    acks, in this process or apart from it."""
    users = {STATION_ID: (state / "credentials" / MQTT_PASSWORD_CREDENTIAL).read_text().strip(),
             CENTRAL_USER: central.password}
    if together:
        from central.commands import load_private_key
        from central.receiver import CentralReceiver

        async with demo_broker(prefer="mosquitto", folder=state / "broker",
                               users=users) as broker:
            receiver = CentralReceiver(state / "central", host=broker.host, port=broker.port,
                                       username=CENTRAL_USER, password=central.password,
                                       signing_key=load_private_key(central.signing_key))
            await asyncio.to_thread(receiver.start)
            try:
                yield broker
            finally:
                await asyncio.to_thread(receiver.stop)
        return
    async with demo_broker(prefer="mosquitto", folder=state / "broker", users=users) as broker, \
            receiver_process(state / "central", broker, central) as pid:
        assert broker.authenticated, broker.kind
        yield broker
        print(f"(apart: reference receiver process peak RSS {status_mb('VmHWM', pid):.0f} MB, "
              "not counted above)")


async def main(count: int, mmap_threshold_kb: int = 128, together: bool = False,
               scanner_process: bool = False, release_memory: bool = True) -> None:
    state = Path(tempfile.mkdtemp(prefix="bst-bench-"))
    creds, _ = prepare_state(state)
    central = prepare_central(state)
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    print("mode: " + ("together (receiver in this process, mosquitto apart)" if together
                      else "apart (mosquitto and receiver in child processes)")
          + ("; emulated scanner in a child process" if scanner_process else "")
          + ("; minutiae.release_memory off" if not release_memory else ""))
    async with broker_and_receiver(state, together, central) as broker:
        config = StationConfig.model_validate({
            "station": {"station_id": STATION_ID, "data_dir": str(state / "station")},
            "store": {"min_free_mb": 16},
            "scanner": {"type": "emulated", "process": scanner_process},
            "minutiae": {"release_memory": release_memory},
            "mqtt": {"host": broker.host, "port": broker.port, "username": STATION_ID,
                     "password_credential": MQTT_PASSWORD_CREDENTIAL,
                     "central_keys": [str(central.public_key)]},
            "web": {"port": 0},
            "records": {"profile": "local-tenprint"},
            "system": {"malloc_mmap_threshold_kb": mmap_threshold_kb},
        })
        station = Station(config)
        await station.start()
        print(f"after start: peak RSS {peak_rss_mb():.0f} MB; RSS {status_mb('VmRSS'):.0f} MB")
        session = station.booking
        assert session is not None and station.store is not None
        txids = []
        for n in range(count):
            await session.start(f"BENCH-{n}")
            while session.current_step is not None:
                await take_print(session)
            started = time.perf_counter()
            try:
                done = await session.submit()
            except Exception:  # a sequence warning on synthetic prints: confirm, as the demo does
                done = await session.submit(confirm_sequence=True)
            elapsed = time.perf_counter() - started
            txids.append(done.transaction_id)
            print(f"booking {n + 1}: last capture to committed {elapsed:.2f} s "
                  f"(budget 2 s on a Pi 4); peak RSS {peak_rss_mb():.0f} MB (budget 300 MB)")
        started = time.perf_counter()
        while time.perf_counter() - started < 60:
            acked = sum(station.store.outbox_state(t) == "stored" for t in txids)
            if acked == count:
                break
            await asyncio.sleep(0.1)
        print(f"sent: central acknowledged {acked} of {count} within "
              f"{time.perf_counter() - started:.1f} s; peak RSS {peak_rss_mb():.0f} MB")
        if scanner_process:
            pid = getattr(station.worker.driver, "pid", None) if station.worker else None
            child = status_mb("VmHWM", pid) if pid else float("nan")
            print(f"emulator: in its child process (peak RSS {child:.0f} MB, not counted above); "
                  f"RSS here now {status_mb('VmRSS'):.0f} MB")
        else:
            held, held_mb = masters_held()
            print(f"emulator: {held} master fingers held, {held_mb:.0f} MB of arrays "
                  f"(RSS now {status_mb('VmRSS'):.0f} MB)")
        await station.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=3)
    parser.add_argument("--mmap-threshold-kb", type=int, default=128)
    parser.add_argument("--together", action="store_true",
                        help="Run the reference receiver in this process too.")
    parser.add_argument("--scanner-process", action="store_true",
                        help="Draw the emulated scanner's prints in a child process.")
    parser.add_argument("--keep-model-memory", action="store_true",
                        help="Turn off minutiae.release_memory, to compare.")
    args = parser.parse_args()
    asyncio.run(main(args.bookings, args.mmap_threshold_kb, args.together, args.scanner_process,
                     not args.keep_model_memory))
