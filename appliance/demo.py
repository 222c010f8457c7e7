"""``booking-station demo``: the whole station on an embedded default, runnable anywhere.

It picks a broker (the Mosquitto already listening on 127.0.0.1:1883, else a Mosquitto process on
a free port, else the embedded pure-Python broker), starts the reference central receiver and the
station with the emulated ten-print livescan, and serves the kiosk page. With ``--bookings N`` an
autopilot takes N emulated bookings and the command exits 0 once the central receiver holds all
of them, or non-zero with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from appliance.app import Station
from appliance.capture.session import CaptureSession
from appliance.config import StationConfig
from appliance.errors import CaptureError
from appliance.store.crypto import new_key
from appliance.web.auth import hash_password

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Broker:
    """Where the demo's MQTT broker listens and what it is."""

    host: str
    port: int
    kind: str


def mqtt_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections there and answers an MQTT 5 CONNECT."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # CONNECT, MQTT 5, clean start, keepalive 5, no properties, client id "probe"
            sock.sendall(bytes([0x10, 18, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 5, 0, 0, 5])
                         + b"probe")
            reply = sock.recv(4)
            return len(reply) >= 2 and reply[0] == 0x20
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def demo_broker(host: str = "127.0.0.1", port: int = 1883,
                      prefer: str = "auto") -> AsyncIterator[Broker]:
    """The first broker that works: existing, Mosquitto process, or embedded."""
    if prefer in ("auto", "existing") and mqtt_listening(host, port):
        yield Broker(host, port, "existing mosquitto")
        return
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if prefer in ("auto", "mosquitto") and mosquitto:
        free = free_port()
        with tempfile.TemporaryDirectory(prefix="bst-mosquitto-") as tmp:
            conf = Path(tmp) / "mosquitto.conf"
            conf.write_text(f"listener {free} 127.0.0.1\nallow_anonymous true\n"
                            "persistence false\nmax_packet_size 1048576\n")
            proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 10
                while not mqtt_listening("127.0.0.1", free):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("mosquitto did not start")
                    await asyncio.sleep(0.05)
                yield Broker("127.0.0.1", free, "mosquitto process")
            finally:
                proc.terminate()
                proc.wait(5)
        return
    from appliance.devbroker.broker import EmbeddedBroker

    broker = EmbeddedBroker()
    bound = await broker.start("127.0.0.1", 0)
    try:
        yield Broker("127.0.0.1", bound, "embedded broker")
    finally:
        await broker.stop()


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


async def autopilot(station: Station, count: int) -> list[str]:
    """Take ``count`` bookings through the same session the kiosk uses."""
    assert station.session is not None
    session = station.session
    if session.booking is not None:
        await session.cancel()
    txids = []
    for n in range(count):
        await session.start(f"DEMO-{int(time.time())}-{n + 1}")
        while session.current_step is not None:
            await take_print(session)
        try:
            done = await session.submit()
        except CaptureError as exc:
            if not str(exc).startswith("sequence check"):
                raise
            print(f"autopilot: {exc} -- submitting anyway (audited)", flush=True)
            done = await session.submit(confirm_sequence=True)
        txids.append(done.transaction_id)
        print(f"booking {n + 1}/{count} stored and queued (transaction {done.transaction_id})",
              flush=True)
    return txids


async def take_print(session: CaptureSession, attempts: int = 3) -> None:
    """Capture the current step like a patient officer would.

    Retake up to ``attempts`` times, then accept the print with a recorded override reason
    (refused where the policy does not allow overrides).
    """
    for attempt in range(attempts):
        await session.capture()
        verdict = getattr(session.inspection, "verdict", None)
        if verdict is None or verdict.passed:
            await session.accept()
            return
        if attempt < attempts - 1:
            await session.retake()
    await session.accept(override_reason=f"autopilot: best of {attempts} attempts")


async def run_demo(state_dir: Path, *, bookings: int | None, timeout_s: float, web_port: int,
                   broker_pref: str = "auto", seed: int = 1) -> int:
    """Run the demo; returns the process exit code."""
    from central.receiver import CentralReceiver

    state_dir.mkdir(parents=True, exist_ok=True)
    creds, password = prepare_state(state_dir)
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
                await _interactive(station, password)
                return 0
            await station.start()
            return await _unattended(station, receiver, bookings, timeout_s)
        finally:
            await station.stop()
            await asyncio.to_thread(receiver.stop)


async def _interactive(station: Station, password: str | None) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    async def announce() -> None:
        while station.web_port is None or station.session is None:
            await asyncio.sleep(0.1)
        url = f"http://{station.config.web.host}:{station.web_port}/"
        print(f"\nKiosk page:      {url}\nTechnician page: {url}admin  (user 'tech'"
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
        txids = await asyncio.wait_for(autopilot(station, count), timeout_s)
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
    link = station.link.counters.last_error if station.link else "no link"
    print(f"demo: FAILED: after {timeout_s:.0f} s central holds "
          f"{sum(receiver.store.holds(t) for t in txids)} of {count}; outbox states {states}; "
          f"last link error: {link or 'none'}")
    return 1
