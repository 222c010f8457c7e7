from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import expect

from appliance.app import Station
from appliance.config import StationConfig
from central.commands import load_private_key, write_keypair
from central.receiver import CentralReceiver
from demo.run import prepare_officer, prepare_state
from tests.kiosk_client import OFFICER, PIN

# A page's assertions wait as long as its actions may: on a loaded 2-core machine a render that
# follows a check on the station's imaging thread can take longer than Playwright's 5 s default.
expect.set_options(timeout=60_000)


@dataclass
class Rig:
    station: Station
    receiver: CentralReceiver
    state: Path
    password: str | None

    async def wait_stored(self, txids: list[str], timeout: float = 60) -> None:
        assert self.station.store is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            states = [self.station.store.outbox_state(t) for t in txids]
            if all(s == "stored" for s in states) and all(
                    self.receiver.store.holds(t) for t in txids):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not delivered: {states}")
            await asyncio.sleep(0.1)


def central_keys(state: Path) -> Path:
    """Central's signing key pair in ``state``; returns the private key file."""
    key = state / "central-signing.key"
    if not key.exists():
        write_keypair(key, state / "central-signing.pub")
    return key


def station_config(state: Path, port: int, **overrides) -> StationConfig:
    central_keys(state)
    data = {
        "station": {"station_id": "e2e-1", "data_dir": str(state / "station")},
        "scanner": {"type": "emulated", "seed": 11},
        "store": {"min_free_mb": 1},
        "mqtt": {"host": "127.0.0.1", "port": port, "ack_timeout_s": 5.0,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 1.0,
                 "central_keys": [str(state / "central-signing.pub")]},
        "web": {"port": 0},
        "logging": {"level": "DEBUG"},
        "records": {"profile": "local-tenprint"},
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return StationConfig.model_validate(data)


@pytest.fixture
async def station_rig(tmp_path: Path, mosquitto, monkeypatch):
    made: list[Rig] = []

    async def make(**overrides) -> Rig:
        creds, password = prepare_state(tmp_path)
        prepare_officer(creds, OFFICER, PIN)
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        receiver = CentralReceiver(tmp_path / "central", host=mosquitto.host,
                                   port=mosquitto.port,
                                   signing_key=load_private_key(central_keys(tmp_path)))
        await asyncio.to_thread(receiver.start)
        station = Station(station_config(tmp_path, mosquitto.port, **overrides))
        rig = Rig(station, receiver, tmp_path, password)
        made.append(rig)
        await station.start()
        return rig

    yield make
    for rig in made:
        await rig.station.stop()
        await asyncio.to_thread(rig.receiver.stop)
    os.environ.pop("CREDENTIALS_DIRECTORY", None)
