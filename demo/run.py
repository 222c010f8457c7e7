"""The demo's run: a broker, the reference central receiver and the station, as in production.

On first run it makes, in its state folder, central's Ed25519 signing key pair (the station is
configured with the public half, so it believes only acks and commands central signed) and the
broker passwords of the station and of central. It starts a Mosquitto process with those
passwords and the production ACL (docs/mosquitto-acl.conf), the reference central receiver, and
the station with the emulated ten-print livescan, and serves the kiosk page. The station id is
derived from this machine and the state folder, so two demos never share an id on one broker.
With ``--bookings N`` an autopilot takes N emulated bookings and the run exits 0 once the
central receiver holds all of them, or non-zero with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.app import Station
from appliance.config import StationConfig
from appliance.store.crypto import new_key
from appliance.web.auth import hash_password
from demo.autopilot import autopilot
from demo.broker import Broker, demo_broker

MQTT_PASSWORD_CREDENTIAL = "booking-station-mqtt-password"
CENTRAL_USER = "central"


@dataclass(frozen=True, slots=True)
class CentralIdentity:
    """Central's side of the demo: its signing key, its public key, its broker password."""

    signing_key: Path
    public_key: Path
    password: str


def station_id_for(state_dir: Path) -> str:
    """``demo-`` and 12 hex digits of this machine's id and the state folder's real path."""
    machine = ""
    for source in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        with contextlib.suppress(OSError):
            machine = source.read_text().strip()
        if machine:
            break
    seed = f"{machine or socket.gethostname()}\0{state_dir.resolve()}".encode()
    return "demo-" + hashlib.sha256(seed).hexdigest()[:12]


def _secret_file(path: Path, make: str) -> str:
    """The file's text, written first (mode 600) when absent."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make)
    return path.read_text().strip()


def prepare_central(state_dir: Path) -> CentralIdentity:
    """Central's signing key pair and broker password in ``state_dir/central-keys``."""
    from central.commands import write_keypair

    folder = state_dir / "central-keys"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    signing, public = folder / "central-signing.key", folder / "central-signing.pub"
    if not signing.exists():
        public.unlink(missing_ok=True)
        write_keypair(signing, public)
    password = _secret_file(folder / "mqtt-password", secrets.token_urlsafe(18))
    return CentralIdentity(signing, public, password)

log = logging.getLogger(__name__)


def prepare_state(state_dir: Path) -> tuple[Path, str]:
    """Credentials for the demo: a store key and a technician login, root-only files.

    The technician's password is new at every start and printed, so whoever starts the demo
    can sign in (it is a demo: a station's real logins come from the installer).
    """
    creds = state_dir / "credentials"
    creds.mkdir(parents=True, exist_ok=True)
    os.chmod(creds, 0o700)
    key_file = creds / "booking-station-db-key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key().hex())
    users = creds / "booking-station-admin-users"
    password = secrets.token_urlsafe(9)  # new at every start: it is a demo, and says so
    fresh = users.with_name(users.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"tech:{hash_password(password)}\n")
    os.replace(fresh, users)
    _secret_file(creds / MQTT_PASSWORD_CREDENTIAL, secrets.token_urlsafe(18))
    return creds, password


#: The demo's kiosk officer.
DEMO_OFFICER = "officer1"


def prepare_officer(creds: Path, officer: str = DEMO_OFFICER, pin: str | None = None, *,
                    renew: bool = False) -> str | None:
    """The kiosk officers' credential (argon2id PIN hashes), written once (or anew: ``renew``).

    Returns the PIN when the file was written now; None when it was already there. ``pin``
    fixes the PIN (tests); else a random six digits. The demo renews it at every start and
    prints it, as it does the technician password: it is a demo.
    """
    officers = creds / "booking-station-officers"
    if renew:
        officers.unlink(missing_ok=True)
    if officers.exists():
        return None
    pin = pin or f"{secrets.randbelow(10**6):06d}"
    fd = os.open(officers, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{officer}:{hash_password(pin)}\n")
    return pin


def demo_config(state_dir: Path, broker: Broker, web_port: int, seed: int,
                central: CentralIdentity) -> StationConfig:
    """The embedded default: emulated scanner, local broker, kiosk on ``web_port``."""
    station_id = station_id_for(state_dir)
    return StationConfig.model_validate({
        "station": {"station_id": station_id, "data_dir": str(state_dir / "station")},
        "scanner": {"type": "emulated", "seed": seed, "process": True},
        "store": {"min_free_mb": 64},
        "mqtt": {"host": broker.host, "port": broker.port, "ack_timeout_s": 10.0,
                 "username": station_id, "password_credential": MQTT_PASSWORD_CREDENTIAL,
                 "central_keys": [str(central.public_key)]},
        "web": {"port": web_port},
        "records": {"profile": "local-tenprint"},
    })


def broker_users(state_dir: Path, creds: Path, central: CentralIdentity) -> dict[str, str]:
    """Who may log in to the demo's broker: this station (by its id) and central."""
    station = (creds / MQTT_PASSWORD_CREDENTIAL).read_text().strip()
    return {station_id_for(state_dir): station, CENTRAL_USER: central.password}


async def run_demo(state_dir: Path, *, bookings: int | None, timeout_s: float, web_port: int,
                   broker_pref: str = "auto", seed: int = 1) -> int:
    """Run the demo; returns the process exit code."""
    from central.commands import load_private_key
    from central.receiver import CentralReceiver

    state_dir.mkdir(parents=True, exist_ok=True)
    creds, password = prepare_state(state_dir)
    central = prepare_central(state_dir)
    pin = prepare_officer(creds, renew=True)
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    async with demo_broker(prefer=broker_pref, folder=state_dir / "broker",
                           users=broker_users(state_dir, creds, central)) as broker:
        print(f"broker: {broker.kind} on {broker.host}:{broker.port}", flush=True)
        config = demo_config(state_dir, broker, web_port, seed, central)
        print(f"station id: {config.station.station_id}; central's key id: "
              f"{_key_id(central.public_key)}", flush=True)
        receiver = CentralReceiver(state_dir / "central", host=broker.host, port=broker.port,
                                   prefix=config.mqtt.topic_prefix,
                                   username=CENTRAL_USER, password=central.password,
                                   signing_key=load_private_key(central.signing_key))
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


def _key_id(public: Path) -> str:
    from appliance.sync.signing import key_id, load_public_key

    return key_id(load_public_key(public))


async def _interactive(station: Station, password: str, pin: str | None) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    async def announce() -> None:
        while station.web_port is None or station.booking is None:
            await asyncio.sleep(0.1)
        url = f"http://{station.config.web.host}:{station.web_port}/"
        print(f"\nKiosk page:      {url}  (officer '{DEMO_OFFICER}', PIN '{pin}')"
              f"\nTechnician page: {url}admin  (user 'tech', password '{password}')"
              "\n(both new at every start: it is a demo)\nPress Ctrl-C to stop.", flush=True)
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
