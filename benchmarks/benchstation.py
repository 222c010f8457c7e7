"""A station for the page benchmarks: the demo's broker and credentials, emulated flats.

Used by ``kiosk_bench.py`` and ``technician_bench.py``: a Mosquitto process on a free port with
the demo's passwords and ACL, the station logged in as itself, started in the calling process
on its own state folder, stopped on the way out.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the demo's broker and credentials, from the checkout

from appliance.app import Station  # noqa: E402
from appliance.config import StationConfig  # noqa: E402
from demo.broker import demo_broker  # noqa: E402
from demo.run import MQTT_PASSWORD_CREDENTIAL, prepare_state  # noqa: E402


@asynccontextmanager
async def bench_station(credentials: Callable[[Path], None] = lambda _c: None,
                        **sections: dict[str, Any]) -> AsyncIterator[Station]:
    """A started flats station; ``credentials`` adds to its credential folder first, and
    ``sections`` are merged into its config's sections."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        creds, _password = prepare_state(state)
        credentials(creds)
        os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
        users = {"bench-1": (creds / MQTT_PASSWORD_CREDENTIAL).read_text().strip()}
        async with demo_broker(prefer="mosquitto", folder=state / "broker",
                               users=users) as broker:
            config: dict[str, dict[str, Any]] = {
                "station": {"station_id": "bench-1", "data_dir": str(state / "station")},
                "scanner": {"type": "emulated", "seed": 3}, "store": {"min_free_mb": 1},
                "mqtt": {"host": broker.host, "port": broker.port, "username": "bench-1",
                         "password_credential": MQTT_PASSWORD_CREDENTIAL},
                "web": {"port": 0}, "records": {"profile": "local-flats"},
                "capture": {"sequence": "flats"}, "quality": {"min_nfiq2_plain": 0}}
            for name, values in sections.items():
                config[name] = {**config.get(name, {}), **values}
            station = Station(StationConfig.model_validate(config))
            await station.start()
            try:
                yield station
            finally:
                await station.stop()
