"""The technician's routes: sign-in with lockout, roles, CSRF, and never a subject."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import pytest

from appliance.capture.diagnostics import ScannerTools
from appliance.domain import Subject
from appliance.store import oversight
from appliance.system.logs import RecentLogs
from appliance.web.signin import REHASHED_SETTING
from demo.run import prepare_state
from tests.web.admin_helpers import (
    a_finished_booking,
    add_logins,
    admin_routes,
    auditor_line,
    memory_configuration,
    pbkdf2_line,
    sign_in,
)
from tests.web.conftest import services_for

PUBLIC = {("GET", "/admin/login"), ("POST", "/api/admin/login")}


@pytest.fixture
def creds(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    folder, password = prepare_state(tmp_path / "state")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder, password


def audit_of(booking) -> list[dict]:
    return list(reversed(booking.store.audit_entries(200)))


async def test_every_admin_route_needs_a_session(booking_factory, client_for, creds) -> None:
    client = client_for(services_for(await booking_factory()))
    routes = admin_routes(client._transport.app)  # type: ignore[attr-defined]
    assert len(routes) >= 10
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        answer = await client.request(method, path, follow_redirects=False)
        if path == "/admin":
            assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
        else:
            assert answer.status_code == 401, (method, path, answer.text)
    # HTTP Basic credentials open nothing any more
    basic = await client.get("/api/admin/health", auth=("tech", creds[1]))
    assert basic.status_code == 401
    assert (await client.get("/api/docs")).status_code == 404


async def test_sign_in_csrf_and_sign_out(booking_factory, client_for, creds) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    login = await client.post("/api/admin/login", json={"user": "tech", "password": creds[1]})
    assert login.status_code == 200
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert login.json()["role"] == "technician" and login.json()["idle_timeout_s"] == 1800
    csrf = {"X-CSRF-Token": login.json()["csrf"]}
    assert (await client.get("/api/admin/health")).status_code == 200
    assert (await client.get("/admin")).status_code == 200
    assert (await client.post("/api/admin/outbox/retry")).status_code == 403  # no token
    assert (await client.post("/api/admin/outbox/retry", headers=csrf)).status_code == 200
    assert (await client.post("/api/admin/logout", headers=csrf)).status_code == 204
    assert (await client.get("/api/admin/health")).status_code == 401
    actions = [e["action"] for e in audit_of(booking)]
    assert actions[-3:] == ["login", "remote_command", "logout"]


async def test_five_failures_lock_the_name_and_the_address(booking_factory, client_for,
                                                           creds) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    for n in range(5):
        wrong = await client.post("/api/admin/login", json={"user": "tech", "password": "nope"})
        assert wrong.status_code == (429 if n == 4 else 401)  # the fifth failure locks
    right = await client.post("/api/admin/login", json={"user": "tech", "password": creds[1]})
    assert right.status_code == 429 and 590 <= int(right.headers["retry-after"]) <= 600
    # the address is locked too: another name from the same client is refused unchecked
    other = await client.post("/api/admin/login", json={"user": "x", "password": "y"})
    assert other.status_code == 429
    entries = audit_of(booking)
    failed = [e for e in entries if e["action"] == "login_failed"]
    assert len(failed) == 7 and {e["actor"] for e in failed} == {"technician:tech",
                                                                 "technician:unknown-name"}
    [locked] = [e for e in entries if e["action"] == "login_locked"]
    assert json.loads(locked["detail"])["locked"] == ["addr", "user"]
    assert "nope" not in json.dumps(entries)


async def test_an_unknown_name_never_reaches_the_log(booking_factory, client_for, creds) -> None:
    booking = await booking_factory()
    client = client_for(services_for(booking))
    typed = "my-secret-passphrase"  # a password typed into the name field
    answer = await client.post("/api/admin/login", json={"user": typed, "password": "x"})
    assert answer.status_code == 401 and answer.json() == {"detail": "wrong name or password"}
    assert typed not in json.dumps(audit_of(booking))


async def test_the_auditor_reads_the_audit_log_and_nothing_else(booking_factory, client_for,
                                                                creds) -> None:
    add_logins(creds[0], auditor_line("ada", "audit pw"))
    booking = await booking_factory()
    client = client_for(services_for(booking))
    csrf = await sign_in(client, "ada", "audit pw")
    session = (await client.get("/api/admin/session")).json()
    assert session["role"] == "auditor"
    for path in ("/api/admin/audit", "/api/admin/audit/verify", "/api/admin/audit/export"):
        assert (await client.get(path)).status_code == 200, path
    # the page's refresh gives the auditor the chain and the audit page, nothing of a technician's
    refreshed = (await client.get("/api/admin/refresh")).json()
    assert set(refreshed) == {"verify", "audit"} and refreshed["verify"]["ok"] is True
    for method, path in admin_routes(client._transport.app):  # type: ignore[attr-defined]
        if path.startswith("/api/admin/audit") or path in ("/api/admin/session", "/admin",
                                                           "/api/admin/refresh") \
                or (method, path) in PUBLIC or path == "/api/admin/logout":
            continue
        answer = await client.request(method, path, headers=csrf, json={"per_s": 1})
        assert answer.status_code == 403, (method, path)


async def test_one_refresh_answers_what_the_page_asked_of_five_routes(booking_factory,
                                                                       client_for, creds) -> None:
    booking = await booking_factory()
    await a_finished_booking(booking, "BK-REFRESH-1", Subject())
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])
    refreshed = (await client.get("/api/admin/refresh", params={
        "limit": 100, "outbox_limit": 50, "action": "booking_committed"})).json()
    assert set(refreshed) == {"verify", "audit", "scanner", "health", "outbox"}, refreshed
    assert refreshed["audit"] == (await client.get("/api/admin/audit", params={
        "limit": 100, "action": "booking_committed"})).json()
    assert [e["action"] for e in refreshed["audit"]] == ["booking_committed"]
    outbox = (await client.get("/api/admin/outbox?limit=50")).json()
    clock_free = lambda view: {**view, "rows": [  # noqa: E731
        {k: v for k, v in row.items() if k not in ("age_s", "next_attempt_in_s")}
        for row in view["rows"]]}
    assert clock_free(refreshed["outbox"]) == clock_free(outbox)
    # the ages are read off the clock at each answer: the later one's are no younger
    assert all(a["age_s"] <= b["age_s"] for a, b in zip(refreshed["outbox"]["rows"],
                                                         outbox["rows"], strict=True))
    scanner = await client.get("/api/admin/scanner")  # no scanner tools here: 503, and null
    assert refreshed["scanner"] == (scanner.json() if scanner.status_code == 200 else None)
    health = (await client.get("/api/admin/health")).json()
    assert refreshed["health"]["overall"] == health["overall"]
    assert refreshed["verify"]["ok"] and refreshed["verify"]["verified_to"] >= 1
    bad = await client.get("/api/admin/refresh", params={"actor": "no spaces allowed"})
    assert bad.status_code == 422


async def test_an_older_pbkdf2_line_is_rehashed_at_sign_in(booking_factory, client_for,
                                                           creds) -> None:
    add_logins(creds[0], pbkdf2_line("old", "from 2024"))
    booking = await booking_factory()
    client = client_for(services_for(booking))
    await sign_in(client, "old", "from 2024")
    stored = booking.store.read(lambda c: oversight.setting(c, REHASHED_SETTING))
    assert stored["old"]["hash"].startswith("$argon2id$")
    # a new app (a restart) signs in against the argon2id hash kept in the store
    again = client_for(services_for(booking))
    await sign_in(again, "old", "from 2024")
    assert (await again.post("/api/admin/login", json={"user": "old", "password": "x"})
            ).status_code == 401


async def test_bounds_of_every_query(booking_factory, client_for, creds) -> None:
    client = client_for(services_for(await booking_factory()))
    await sign_in(client, "tech", creds[1])
    for query in ("limit=-1e19", "limit=-1", "limit=0", "limit=1001", "limit=1e400",
                  "since=not-a-time", "action=drop_table", "actor=%27%3B--%20",
                  "before=-5", "before=99999999999999999999999"):
        answer = await client.get(f"/api/admin/audit?{query}")
        assert answer.status_code == 422, (query, answer.text)
    assert (await client.get("/api/admin/audit?limit=1000")).status_code == 200
    too_big = await client.post("/api/admin/login", content=b"{" + b" " * 70_000 + b"}",
                                headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413


async def test_the_technician_never_sees_a_subject(booking_factory, client_for, creds) -> None:
    """Walks every technician route after a real booking; fails on any trace of the subject."""
    booking = await booking_factory()
    subject = Subject(last_name="Zyxwvuts", first_name="Qponmlk", date_of_birth="19710203")
    logged = RecentLogs()
    root = logging.getLogger()
    root.addHandler(logged)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        booking_id = await a_finished_booking(booking, "BK-SECRET-77", subject)
    finally:
        root.removeHandler(logged)
        root.setLevel(level)
    assert logged.lines()  # the bundle below carries real log lines
    services = services_for(booking)
    services.recent_logs = logged.lines
    services.configuration = memory_configuration(booking.store.audit)

    async def no_reconnect() -> None:
        raise AssertionError("the walker only reads")

    services.scanner_tools = ScannerTools(lambda: booking.worker, lambda: None, no_reconnect)
    client = client_for(services)
    csrf = await sign_in(client, "tech", creds[1])
    forbidden = ["BK-SECRET-77", "Zyxwvuts", "Qponmlk", "19710203", "1971-02-03"]
    seen = 0
    for method, path in admin_routes(client._transport.app):  # type: ignore[attr-defined]
        if method != "GET":
            continue
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        seen += 1
        body = answer.content
        if answer.headers["content-type"] == "application/zip":
            with zipfile.ZipFile(io.BytesIO(body)) as bundle:
                assert {"config.json", "health.json", "logs.txt"} <= set(bundle.namelist())
                body = b"\n".join(bundle.read(name) for name in bundle.namelist())
        for word in forbidden:
            assert word.encode() not in body, (path, word)
        for magic in (b"\x89PNG", b"\xff\xd8\xff", b"\xff\xa0\xff\xa8"):  # PNG, JPEG, WSQ
            assert magic not in body, (path, magic)
        assert answer.headers["content-type"].split(";")[0] in (
            "application/json", "text/html", "application/x-ndjson", "application/zip"), path
    assert seen >= 8
    outbox = (await client.get("/api/admin/outbox")).json()
    [row] = outbox["rows"]
    assert row["state"] == "queued" and row["size"] > 1000 and booking_id not in row["booking"]
    assert (await client.post("/api/admin/outbox/retry", headers=csrf)).status_code == 200
