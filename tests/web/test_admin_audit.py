"""The audit view: filters, JSON-lines export, verification that walks only what is new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demo.run import prepare_state
from tests.web.admin_helpers import sign_in
from tests.web.conftest import services_for


@pytest.fixture
def creds(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    folder, password = prepare_state(tmp_path / "state")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder, password


async def tamper(store, seq: int) -> None:
    await store.write(lambda c: c.execute(
        "UPDATE audit_log SET detail = '{\"edited\":true}' WHERE seq = ?", (seq,)))


async def test_verification_walks_only_new_entries(booking_factory, client_for, creds) -> None:
    booking = await booking_factory()
    store = booking.store
    for n in range(6):
        await store.audit("system", "remote_command", {"n": n})
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])  # one more entry: the login
    first = (await client.get("/api/admin/audit/verify")).json()
    assert first["ok"] and first["checked"] == 7 and first["verified_to"] == 7
    again = (await client.get("/api/admin/audit/verify")).json()
    assert again["ok"] and again["checked"] == 0 and again["verified_to"] == 7
    await store.audit("system", "remote_command", {"n": 6})
    await store.audit("system", "remote_command", {"n": 7})
    step = (await client.get("/api/admin/audit/verify")).json()
    assert step["ok"] and step["checked"] == 2 and step["verified_to"] == 9

    # an edit after the last verified entry is found by the next poll
    await store.audit("system", "remote_command", {"n": 8})
    await tamper(store, 10)
    broken = (await client.get("/api/admin/audit/verify")).json()
    assert not broken["ok"] and broken["first_bad"] == 10 and "hash" in broken["problem"]
    assert (await client.get("/api/admin/audit/verify")).json()["first_bad"] == 10  # stays


async def test_an_edit_behind_the_checkpoint_needs_the_whole_walk(booking_factory, client_for,
                                                                  creds) -> None:
    booking = await booking_factory()
    store = booking.store
    for n in range(4):
        await store.audit("system", "remote_command", {"n": n})
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])
    assert (await client.get("/api/admin/audit/verify")).json()["verified_to"] == 5
    await tamper(store, 2)
    assert (await client.get("/api/admin/audit/verify")).json()["ok"]  # not walked again
    whole = (await client.get("/api/admin/audit/verify?whole=true")).json()
    assert not whole["ok"] and whole["first_bad"] == 2 and whole["checked"] == 2
    # once broken, every poll walks the whole chain and keeps saying so
    assert (await client.get("/api/admin/audit/verify")).json()["first_bad"] == 2


async def test_an_edited_checkpoint_starts_a_whole_walk(booking_factory, client_for,
                                                        creds) -> None:
    booking = await booking_factory()
    store = booking.store
    await store.audit("system", "remote_command", {"n": 0})
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])
    assert (await client.get("/api/admin/audit/verify")).json()["verified_to"] == 2
    await tamper(store, 2)  # the checkpoint's content, its stored hash left as it was
    broken = (await client.get("/api/admin/audit/verify")).json()
    assert not broken["ok"] and broken["first_bad"] == 2 and broken["checked"] == 2


async def test_filters_and_the_json_lines_export(booking_factory, client_for, creds) -> None:
    booking = await booking_factory()
    store = booking.store
    await store.audit("central:ops", "remote_command", {"command": "pause"})
    await store.audit("system", "station_started", {})
    client = client_for(services_for(booking))
    await sign_in(client, "tech", creds[1])

    async def actions(query: str) -> list[str]:
        answer = await client.get("/api/admin/audit?" + query)
        assert answer.status_code == 200, answer.text
        return [e["action"] for e in answer.json()]

    assert await actions("action=station_started") == ["station_started"]
    assert await actions("actor=central:ops") == ["remote_command"]
    assert await actions("actor=technician:") == ["login"]
    assert await actions("limit=2") == ["login", "station_started"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await actions("since=" + later.replace("+", "%2B")) == []
    assert len(await actions("until=" + later.replace("+", "%2B"))) == 3
    [newest] = (await client.get("/api/admin/audit?limit=1")).json()
    assert await actions(f"before={newest['seq']}") == ["station_started", "remote_command"]

    export = await client.get("/api/admin/audit/export")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in export.headers["content-disposition"]
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [e["action"] for e in lines] == ["remote_command", "station_started", "login"]
    for before, after in zip(lines, lines[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    only = await client.get("/api/admin/audit/export?action=login")
    assert [json.loads(x)["action"] for x in only.text.splitlines()] == ["login"]
    # every export is itself audited
    assert (await actions("action=diagnostics_exported"))[:2] == ["diagnostics_exported"] * 2
