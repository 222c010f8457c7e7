"""Changing the configuration of a running station from the technician page, and its rollback.

A real station started from a config file on disk, a real broker; the change goes through the
page's API as the browser sends it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from appliance.app import Station
from appliance.config import load_config
from demo.run import prepare_state
from tests.conftest import free_port, until

CONFIG = """\
# the station under test; this comment must survive every change
[station]
station_id = "cfg-1"
data_dir = "{data}"

[scanner]
type = "emulated"
seed = 11

[store]
min_free_mb = 1

[mqtt]
host = "127.0.0.1"
port = {port}
ack_timeout_s = 5.0
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[web]
port = 0

[records]
profile = "local-flats"

[capture]
sequence = "flats"
"""


class Running:
    def __init__(self, station: Station, path: Path, client: httpx.AsyncClient) -> None:
        self.station = station
        self.path = path
        self.client = client


@pytest.fixture
async def running(tmp_path: Path, mosquitto, monkeypatch) -> AsyncIterator[Running]:
    creds, password = prepare_state(tmp_path)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(data=tmp_path / "station", port=mosquitto.port))
    path.chmod(0o640)
    station = Station(load_config(path), config_path=path, rollback_after_s=6.0)
    await station.start()
    base = f"http://127.0.0.1:{station.web_port}"
    client = httpx.AsyncClient(base_url=base, headers={"Origin": base}, timeout=120)
    try:
        login = await client.post("/api/admin/login", json={"user": "tech", "password": password})
        assert login.status_code == 200
        client.headers["X-CSRF-Token"] = login.json()["csrf"]
        await until(lambda: station.sync is not None and station.sync.link.connected,
                    what="the central link")
        yield Running(station, path, client)
    finally:
        await client.aclose()
        await station.stop()


def audit(station: Station, action: str) -> list[dict]:
    assert station.store is not None
    return [e for e in station.store.audit_entries(500) if e["action"] == action]


async def test_a_change_is_checked_like_check_config(running: Running) -> None:
    client = running.client
    shown = (await client.get("/api/admin/config")).json()
    assert shown["config"]["mqtt"]["port"] == running.station.config.mqtt.port
    assert shown["file"] == str(running.path) and "mqtt" in shown["editable"]
    for change, key in (("[mqtt]\nport = 'eighty'", "mqtt.port"),
                        ("[mqtt]\nport = 70000", "mqtt.port"),
                        ("[mqtt]\nunknown_key = 1", "mqtt.unknown_key"),
                        ("[web]\nport = 9999", "web"),
                        ("[mqtt\nport = 1", "(top)")):
        checked = (await client.post("/api/admin/config/check", json={"change": change})).json()
        assert not checked["ok"] and [p["path"] for p in checked["problems"]] == [key], change
    good = (await client.post("/api/admin/config/check",
                              json={"change": "[mqtt]\nack_timeout_s = 7.5"})).json()
    assert good["ok"] and good["restarts"] == ["central link"]
    assert good["diff"] == [{"key": "mqtt.ack_timeout_s", "from": 5.0, "to": 7.5}]
    assert audit(running.station, "config_changed") == []  # checking changes nothing


async def test_apply_then_roll_back_by_itself(running: Running) -> None:
    client, station, path = running.client, running.station, running.path
    applied = (await client.post("/api/admin/config/apply",
                                 json={"change": "[mqtt]\nack_timeout_s = 7.5"})).json()
    assert applied["applied"] and not applied["rolled_back"], applied
    assert station.config.mqtt.ack_timeout_s == 7.5
    text = path.read_text()
    assert "ack_timeout_s = 7.5" in text and "this comment must survive" in text
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert station.sync is not None and station.sync.link.connected
    [changed] = audit(station, "config_changed")
    assert changed["actor"] == "technician:tech"
    assert json.loads(changed["detail"])["diff"][0]["key"] == "mqtt.ack_timeout_s"

    dead = free_port()  # nothing listens there: the link cannot come back
    rolled = (await client.post("/api/admin/config/apply",
                                json={"change": f"[mqtt]\nport = {dead}"})).json()
    assert not rolled["applied"] and rolled["rolled_back"], rolled
    assert "central link" in rolled["reason"]
    assert path.read_text() == text  # the last good file is back
    assert station.config.mqtt.port != dead and station.config.mqtt.ack_timeout_s == 7.5
    await until(lambda: station.sync is not None and station.sync.link.connected,
                what="the link after the rollback")
    [back] = audit(station, "config_rolled_back")
    assert json.loads(back["detail"])["diff"] == [
        {"key": "mqtt.port", "from": station.config.mqtt.port, "to": dead}]
    assert (path.parent / "config.toml.last-good").exists()
    # the page's services are the restarted ones
    health = (await client.get("/api/admin/health")).json()
    assert health["link"]["connected"] is True


async def test_no_change_while_a_booking_is_open(running: Running) -> None:
    booking = running.station.booking
    assert booking is not None
    await booking.start("BK-CFG-1")
    refused = (await running.client.post("/api/admin/config/apply",
                                         json={"change": "[mqtt]\nack_timeout_s = 9.0"})).json()
    assert not refused["applied"] and "booking is in progress" in json.dumps(refused["problems"])
    await booking.cancel()
