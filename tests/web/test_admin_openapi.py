"""The technician API is honest: schemathesis, run from its own OpenAPI, against the real app.

Three passes over every ``/api/admin`` operation: signed in as a technician (no server error,
no undeclared status, answers that match their schemas), with no session (every operation but
the sign-in answers 401) and as an auditor (every technician-only operation answers 403).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from appliance.capture.diagnostics import ScannerTools
from appliance.config import StationConfig
from appliance.reconfigure import Reconfigurer
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.store import Store
from appliance.sync.config import MqttSection
from appliance.sync.service import StationHooks, SyncService
from appliance.system.config import StationSection
from appliance.system.events import Events
from appliance.system.health import HealthService, HealthSources
from appliance.web.app import create_app
from appliance.web.config import WebSection
from appliance.web.services import Services
from demo.run import prepare_state
from tests.conftest import MosquittoProcess, _need_mosquitto, free_port
from tests.web.admin_helpers import add_logins, auditor_line
from tests.web.conftest import officer_credentials

HOST = "testserver"  # the host schemathesis's ASGI client sends
ORIGIN = f"http://{HOST}"
READER_PATHS = ("/api/admin/audit", "/api/admin/session", "/api/admin/logout",
                "/api/admin/refresh")
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


async def no_scanner() -> None:
    raise AssertionError("there is no scanner to reconnect")


class Station:
    """The app over a real store, and a signed-in technician and auditor."""

    def __init__(self, folder: Path, broker: MosquittoProcess) -> None:
        creds, self.password = prepare_state(folder / "state")
        add_logins(creds, auditor_line("ada", "audit pw"))
        self.creds = creds
        self.store = Store(folder / "station.db", BlobCipher(new_key()))
        self.store.open()
        health = HealthService("api-1", 1, HealthSources(
            store=self.store.health, scanner_state=lambda: "ready", clock=lambda: "synchronised",
            link_connects=lambda: 0, problems=lambda: []))
        self.sync = SyncService("api-1", MqttSection(host=broker.host, port=broker.port),
                                self.store, StationHooks(health=health.read))
        self.config = StationConfig.model_validate({"station": {"station_id": "api-1"}})

        async def restart(config: StationConfig, _sections: set[str]) -> None:
            self.config = config

        configuration = Reconfigurer(
            running=lambda: self.config, path=None, restart=restart,
            healthy=lambda _sections: (True, ""), audit=self.store.audit, timeout_s=1.0,
            check_machine=False)
        self.app: FastAPI = create_app(Services(
            station=StationSection(station_id="api-1"),
            web=WebSection(server_names=(HOST,)), health=health, events=Events(),
            store=self.store, sync=self.sync, configuration=configuration,
            scanner_tools=ScannerTools(lambda: None, lambda: None, no_scanner)))
        self.client = TestClient(self.app, base_url=ORIGIN, headers={"Origin": ORIGIN},
                                 client=("10.9.8.7", 50000))
        self.client.__enter__()

        async def start_sync() -> None:  # on the loop the test client runs the app on
            self.sync.start(asyncio.get_running_loop())

        self.client.portal.call(start_sync)

    def session_headers(self, user: str, password: str) -> dict[str, str]:
        """Headers that carry a fresh session of ``user``."""
        self.client.cookies.clear()
        answer = self.client.post("/api/admin/login", json={"user": user, "password": password})
        assert answer.status_code == 200, answer.text
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        self.client.cookies.clear()
        return {"Cookie": cookie, "Origin": ORIGIN, "X-CSRF-Token": answer.json()["csrf"]}

    def close(self) -> None:
        self.client.portal.call(self.sync.stop)
        self.client.__exit__(None, None, None)
        self.store.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[MosquittoProcess]:
    port = free_port()
    conf = tmp_path_factory.mktemp("broker") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    started = MosquittoProcess("127.0.0.1", port, conf, binary=_need_mosquitto())
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def station(tmp_path_factory, broker: MosquittoProcess) -> Iterator[Station]:
    before = os.environ.get("CREDENTIALS_DIRECTORY")
    made = Station(tmp_path_factory.mktemp("api"), broker)
    os.environ["CREDENTIALS_DIRECTORY"] = str(made.creds)
    technician = made.session_headers("tech", made.password)
    for action in ("now", "pause"):  # a few audit entries to page through and export
        made.client.post(f"/api/admin/sync/{action}", headers=technician)
    yield made
    made.close()
    if before is None:
        os.environ.pop("CREDENTIALS_DIRECTORY", None)
    else:
        os.environ["CREDENTIALS_DIRECTORY"] = before


@pytest.fixture(scope="module")
def technician(station: Station) -> dict[str, str]:
    return station.session_headers("tech", station.password)


@pytest.fixture(scope="module")
def auditor(station: Station) -> dict[str, str]:
    return station.session_headers("ada", "audit pw")


@pytest.fixture(scope="module")
def operations(station: Station, technician: dict[str, str]) -> list[Any]:
    """Every ``/api/admin`` operation of the OpenAPI the station serves to a technician."""
    loaded = schemathesis.openapi.from_asgi("/openapi.json", station.app, headers=technician)
    found = [result.ok() for result in
             loaded.include(path_regex="^/api/admin/").get_all_operations()]
    assert len(found) >= 10
    return found


def fuzz(operations: list[Any], check: Callable[[Any], None], *,
         skip: tuple[str, ...] = ()) -> int:
    """Run ``check`` on generated cases of every operation whose path does not end in ``skip``."""
    runs = 0
    for operation in operations:
        if skip and operation.path.endswith(skip):
            continue

        @given(case=operation.as_strategy())
        @EXAMPLES
        def each(case: Any) -> None:
            check(case)

        each()
        runs += 1
    return runs


def test_the_description_is_for_technicians_only(station: Station, auditor) -> None:
    assert station.client.get("/openapi.json").status_code == 401
    assert station.client.get("/openapi.json", headers=auditor).status_code == 403
    assert station.client.get("/api/docs").status_code == 404


@pytest.fixture(autouse=True)
def officers(station: Station, monkeypatch) -> Path:
    """Here the module's station holds every credential: its technician, auditor and officers."""
    officer_credentials(station.creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(station.creds))
    return station.creds


def test_signed_in_no_server_error_no_undeclared_answer(operations, technician) -> None:
    assert fuzz(operations, lambda case: case.call_and_validate(headers=technician),
                skip=("/login", "/logout")) >= 8


def test_nothing_answers_without_a_session(operations) -> None:
    def check(case: Any) -> None:
        answer = case.call(headers={"Origin": ORIGIN})
        if case.path == "/api/admin/login":
            assert answer.status_code in (401, 422, 429), answer.text
        else:
            assert answer.status_code == 401, (case.method, case.path, answer.text)

    assert fuzz(operations, check) >= 10


def test_the_auditor_reaches_only_the_audit_log(operations, auditor) -> None:
    def check(case: Any) -> None:
        answer = case.call(headers=auditor)
        if case.path.startswith(READER_PATHS):
            assert answer.status_code in (200, 422), (case.path, answer.text)
        else:
            assert answer.status_code in (403, 422), (case.method, case.path, answer.text)

    assert fuzz(operations, check, skip=("/login", "/logout")) >= 8
