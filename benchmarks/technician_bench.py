"""The technician page under attack: sign-in timing of unknown names, bookings under guessing.

    .venv/bin/python benchmarks/technician_bench.py [--rounds 8] [--bookings 2] [--guessers 8]

Starts the station in this process (emulated livescan, flats, a Mosquitto process) and measures
over real sockets, side by side in the same run:

* sign-in answer time for a wrong password of a known name against an unknown name, interleaved,
  each from a fresh loopback address and name so that no lockout shortens either (the issue saw
  0.002 s against 0.464 s before the decoy hash): the ratio of the medians;
* the time of a flats booking (three captures and the commit) alone, then while ``--guessers``
  clients in another process keep guessing passwords from rotating loopback addresses and
  made-up names (the issue saw 7-9 s become 38-39 s): the ratio of the medians. On one machine
  the guessers' own CPU counts against the booking too, which an attacker on the LAN's would
  not.

* the technician page's poll as the station's CPU per 5 s refresh, before (six routes: scanner,
  health, outbox, history, the chain's check, the audit page; a new read connection per read,
  put back for the run) and now (one ``/api/admin/refresh``, kept read connections, the
  history every twelfth refresh): a signed-in technician in another process polls ``--polls``
  times back to back; the station's process CPU over that time, less its own idle CPU over as
  long a time just after (telemetry, health samples, the scanner's owner thread), divided by
  the polls.

The load average is printed before and after: on a shared machine the absolute times say
little, the ratios more.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from benchstation import bench_station

from appliance.app import Station
from appliance.store.readers import read_once
from appliance.web.auth import hash_password


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def client(base: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=600, headers={"Origin": base},
                             transport=httpx.AsyncHTTPTransport(local_address=address))


async def sign_in_times(base: str, rounds: int) -> tuple[list[float], list[float]]:
    known: list[float] = []
    unknown: list[float] = []
    for n in range(rounds):
        async with client(base, f"127.0.9.{n + 1}") as guesser:
            for user, times in ((f"known{n}", known), (f"nobody{n}", unknown)) * 2:
                started = time.perf_counter()
                answer = await guesser.post("/api/admin/login",
                                            json={"user": user, "password": "wrong"})
                times.append(time.perf_counter() - started)
                assert answer.status_code == 401, answer.text
    return known, unknown


async def one_booking(station: Station, number: str) -> float:
    booking = station.booking
    assert booking is not None
    started = time.perf_counter()
    await booking.start(number)
    while booking.current_step is not None:
        await booking.capture()
        await booking.accept()
    await booking.submit()
    return time.perf_counter() - started


#: What the technician page asked at every refresh before #26 (admin.js ``load``)...
POLL_BEFORE = ("/api/admin/scanner", "/api/admin/health", "/api/admin/outbox?limit=50",
               "/api/admin/history?span=day", "/api/admin/audit/verify",
               "/api/admin/audit?limit=100")
#: ...and now: one refresh every 5 s, the charts' history every twelfth (a minute).
POLL_NOW = ("/api/admin/refresh?limit=100&outbox_limit=50",)
HISTORY = ("/api/admin/history?span=day",)


async def poller(base: str, polls: int, paths: list[str]) -> int:
    """A signed-in technician polling ``paths``; prints when it starts and stops."""
    async with client(base, "127.0.0.1") as tech:
        answer = await tech.post("/api/admin/login", json={"user": "known0", "password": "right"})
        assert answer.status_code == 200, answer.text
        for path in paths:  # one refresh to warm the routes
            assert (await tech.get(path)).status_code == 200, path
        print("polling", flush=True)
        sys.stdin.readline()
        for _ in range(polls):
            for path in paths:
                assert (await tech.get(path)).status_code == 200, path
        print("done", flush=True)
    return 0


def fresh_read(station: Station) -> Callable[[Callable[[Any], Any]], Any]:
    """A read on a connection opened for it and closed after, as every read was before #26."""
    return functools.partial(read_once, station.store.path)


async def poll_cost(base: str, polls: int, paths: tuple[str, ...]) -> tuple[float, float, float]:
    """Station CPU per poll (less idle CPU over as long), idle CPU per second, wall seconds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--poller", base, "--polls", str(polls), *paths,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    assert (await proc.stdout.readline()).strip() == b"polling"
    cpu, wall = time.process_time(), time.perf_counter()
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    assert (await proc.stdout.readline()).strip() == b"done"
    busy_cpu, busy_wall = time.process_time() - cpu, time.perf_counter() - wall
    await proc.wait()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(busy_wall)  # the station alone for as long
    idle_per_s = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return (busy_cpu - idle_per_s * busy_wall) / polls, idle_per_s, busy_wall


async def guess_until(base: str, worker: int, done: asyncio.Event, counts: list[int]) -> None:
    round_ = 0
    while not done.is_set():
        round_ += 1
        address = f"127.{10 + worker}.{round_ // 250}.{round_ % 250 + 1}"
        async with client(base, address) as guesser:
            for attempt in range(4):
                if done.is_set():
                    return
                await guesser.post("/api/admin/login", json={
                    "user": f"guess{worker}-{round_}-{attempt}", "password": "x"})
                counts[0] += 1


async def run(args: argparse.Namespace) -> int:
    print(f"before: {loadavg()}", flush=True)

    def technicians(creds: Path) -> None:
        with (creds / "booking-station-admin-users").open("a") as fh:
            for n in range(args.rounds):
                fh.write(f"known{n}:{hash_password('right')}\n")

    async with bench_station(technicians) as station:
        base = f"http://127.0.0.1:{station.web_port}"
        known, unknown = await sign_in_times(base, args.rounds)
        print(f"sign-in, wrong password of a known name: median "
              f"{statistics.median(known):.3f} s over {len(known)}")
        print(f"sign-in, unknown name:                   median "
              f"{statistics.median(unknown):.3f} s over {len(unknown)}")
        ratio = statistics.median(unknown) / statistics.median(known)
        print(f"unknown / known: {ratio:.2f} (1.00 = indistinguishable)")
        kept = station.store.read
        costs: dict[str, list[float]] = {"before": [], "now": [], "history": []}
        for _ in range(2):
            station.store.read = fresh_read(station)  # type: ignore[method-assign]
            costs["before"].append((await poll_cost(base, args.polls, POLL_BEFORE))[0])
            station.store.read = kept  # type: ignore[method-assign]
            costs["now"].append((await poll_cost(base, args.polls, POLL_NOW))[0])
            costs["history"].append((await poll_cost(base, args.polls, HISTORY))[0])
        before = statistics.median(costs["before"])
        now = statistics.median(costs["now"]) + statistics.median(costs["history"]) / 12
        print(f"technician page poll, station CPU per 5 s refresh (medians of 2 runs of "
              f"{args.polls} polls, idle CPU subtracted): before (six routes, a new read "
              f"connection per read) {before * 1000:.1f} ms; now (one refresh route, kept "
              f"read connections, the history every twelfth) {now * 1000:.1f} ms; "
              f"ratio {now / before:.2f}")
        alone = [await one_booking(station, f"BK-ALONE-{n}") for n in range(args.bookings)]
        # the guessers run in their own process, as an attacker's would
        crowd = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--crowd", base, "--guessers", str(args.guessers),
            stdout=asyncio.subprocess.PIPE)
        assert crowd.stdout is not None
        await crowd.stdout.readline()  # "guessing"
        try:
            attacked = [await one_booking(station, f"BK-ATTACKED-{n}")
                        for n in range(args.bookings)]
        finally:
            crowd.send_signal(signal.SIGINT)
            tail = (await crowd.stdout.read()).decode().split()
            await crowd.wait()
        counts = [int(tail[-1]) if tail and tail[-1].isdigit() else -1]
        print(f"flats booking alone:            median {statistics.median(alone):.2f} s "
              f"over {len(alone)}")
        print(f"flats booking, {args.guessers} guessers:      median "
              f"{statistics.median(attacked):.2f} s over {len(attacked)} "
              f"({counts[0]} guesses answered meanwhile)")
        print(f"attacked / alone: "
              f"{statistics.median(attacked) / statistics.median(alone):.2f}")
    print(f"after: {loadavg()}", flush=True)
    return 0


async def crowd(base: str, guessers: int) -> int:
    """The guessers on their own, until interrupted; prints how many answers they got."""
    done, counts = asyncio.Event(), [0]
    tasks = [asyncio.create_task(guess_until(base, w, done, counts)) for w in range(guessers)]
    print("guessing", flush=True)
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        done.set()
    print(counts[0], flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowd", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--poller", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--polls", type=int, default=100, help="technician page refreshes")
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=8, help="names of each kind (x2 tries)")
    parser.add_argument("--bookings", type=int, default=2, help="bookings in each condition")
    parser.add_argument("--guessers", type=int, default=8, help="parallel password guessers")
    args = parser.parse_args()
    if args.poller:
        return asyncio.run(poller(args.poller, args.polls, args.paths))
    if args.crowd:
        try:
            return asyncio.run(crowd(args.crowd, args.guessers))
        except KeyboardInterrupt:
            return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
