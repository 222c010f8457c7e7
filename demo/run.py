"""The demo's run: a broker, the reference central receiver, and the station.

It picks a broker (the Mosquitto already listening on 127.0.0.1:1883, else a Mosquitto process
on a free port), starts the reference central receiver and the station with the emulated
ten-print livescan, and serves the kiosk page. With ``--bookings N`` an autopilot takes N
emulated bookings and the run exits 0 once the central receiver holds all of them, or non-zero
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path

from appliance.app import Station
from appliance.config import StationConfig
from appliance.store.crypto import new_key
from appliance.web.auth import hash_password
from demo.autopilot import autopilot
from demo.broker import Broker, demo_broker

log = logging.getLogger(__name__)


def prepare_state(state_dir: Path) -> tuple[Path, str | None]:
    """Credentials for the demo: a store key and a technician login, root-only files."""
    creds = state_dir / "credentials"
    creds.mkdir(parents=True, exist_ok=True)
    os.chmod(creds, 0o700)
    key_file = creds / "booking-station-db-key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key().hex())
    users = creds / "booking-station-admin-users"
    password = None
    if not users.exists():
        password = secrets.token_urlsafe(9)
        fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"tech:{hash_password(password)}\n")
    return creds, password


#: The demo's kiosk officer.
DEMO_OFFICER = "officer1"


def prepare_officer(creds: Path, officer: str = DEMO_OFFICER, pin: str | None = None
                    ) -> str | None:
    """The kiosk officers' credential (argon2id PIN hashes), written once.

    Returns the PIN when the file was written now (shown once, like the technician password);
    None when it was already there. ``pin`` fixes the PIN (tests); else a random six digits.
    """
    officers = creds / "booking-station-officers"
    if officers.exists():
        return None
    pin = pin or f"{secrets.randbelow(10**6):06d}"
    fd = os.open(officers, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{officer}:{hash_password(pin)}\n")
    return pin


def demo_config(state_dir: Path, broker: Broker, web_port: int, seed: int) -> StationConfig:
    """The embedded default: emulated scanner, local broker, kiosk on ``web_port``."""
    return StationConfig.model_validate({
        "station": {"station_id": "demo-" + state_dir.resolve().name[-20:].replace(".", "-"),
                    "data_dir": str(state_dir / "station")},
        "scanner": {"type": "emulated", "seed": seed, "process": True},
        "store": {"min_free_mb": 64},
        "mqtt": {"host": broker.host, "port": broker.port, "ack_timeout_s": 10.0},
        "web": {"port": web_port},
        "records": {"profile": "local-tenprint"},
    })


async def run_demo(state_dir: Path, *, bookings: int | None, timeout_s: float, web_port: int,
                   broker_pref: str = "auto", seed: int = 1) -> int:
    """Run the demo; returns the process exit code."""
    from central.receiver import CentralReceiver

    state_dir.mkdir(parents=True, exist_ok=True)
    creds, password = prepare_state(state_dir)
    pin = prepare_officer(creds)
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    async with demo_broker(prefer=broker_pref) as broker:
        print(f"broker: {broker.kind} on {broker.host}:{broker.port}", flush=True)
        config = demo_config(state_dir, broker, web_port, seed)
        receiver = CentralReceiver(state_dir / "central", host=broker.host, port=broker.port,
                                   prefix=config.mqtt.topic_prefix)
        await asyncio.to_thread(receiver.start)
        station = Station(config)
        try:
            if bookings is None:
                await _interactive(station, password, pin)
                return 0
            await station.start()
            return await _unattended(station, receiver, bookings, timeout_s)
        finally:
            await station.stop()
            await asyncio.to_thread(receiver.stop)


async def _interactive(station: Station, password: str | None, pin: str | None) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    async def announce() -> None:
        while station.web_port is None or station.booking is None:
            await asyncio.sleep(0.1)
        url = f"http://{station.config.web.host}:{station.web_port}/"
        print(f"\nKiosk page:      {url}  (officer '{DEMO_OFFICER}'"
              + (f", PIN '{pin}')" if pin else ", PIN printed on first run)")
              + f"\nTechnician page: {url}admin  (user 'tech'"
              + (f", password '{password}')" if password else ", password printed on first run)")
              + "\nPress Ctrl-C to stop.", flush=True)
        ready.set_result(None)

    task = asyncio.create_task(announce())
    try:
        await station.run_until_stopped()
    finally:
        task.cancel()


async def _unattended(station: Station, receiver: object, count: int, timeout_s: float) -> int:
    from central.receiver import CentralReceiver

    assert isinstance(receiver, CentralReceiver)
    deadline = time.monotonic() + timeout_s
    try:
        assert station.booking is not None
        txids = await asyncio.wait_for(autopilot(station.booking, count, DEMO_OFFICER),
                                       timeout_s)
    except TimeoutError:
        print(f"demo: FAILED: the {count} bookings were not captured within {timeout_s:.0f} s")
        return 1
    while time.monotonic() < deadline:
        held = [t for t in txids if receiver.store.holds(t)]
        stored = [t for t in txids if station.store and station.store.outbox_state(t) == "stored"]
        if len(held) == count and len(stored) == count:
            print(f"demo: OK: the central receiver holds {count} of {count} bookings and the "
                  "station has their receipts", flush=True)
            return 0
        await asyncio.sleep(0.2)
    states = [station.store.outbox_state(t) if station.store else None for t in txids]
    link = station.sync.link.counters.last_error if station.sync else "no link"
    print(f"demo: FAILED: after {timeout_s:.0f} s central holds "
          f"{sum(receiver.store.holds(t) for t in txids)} of {count}; outbox states {states}; "
          f"last link error: {link or 'none'}")
    return 1
