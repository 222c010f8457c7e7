"""The technician's routes: a login for each, health without subjects, the audit log."""

from __future__ import annotations

import httpx

from tests.web.conftest import services_for


async def test_every_admin_route_needs_a_login(booking_factory, client_for, technician) -> None:
    client = client_for(services_for(await booking_factory()))
    for method, path in (("GET", "/admin"), ("GET", "/api/admin/health"),
                         ("GET", "/api/admin/audit"), ("POST", "/api/admin/sync/now")):
        assert (await client.request(method, path)).status_code == 401
        wrong = await client.request(method, path, auth=(technician[0], "not-it"))
        assert wrong.status_code == 401


async def test_health_and_audit_carry_no_subject(booking_factory, client_for,
                                                 technician) -> None:
    booking = await booking_factory()
    await booking.start("BK-SECRET-77")
    await booking.capture()
    await booking.accept()
    client = client_for(services_for(booking))
    auth = httpx.BasicAuth(*technician)
    health = await client.get("/api/admin/health", auth=auth)
    assert health.status_code == 200
    body = health.json()
    assert body["health"]["station_id"] == "web-1" and body["audit"]["ok"] is True
    audit = await client.get("/api/admin/audit?limit=5", auth=auth)
    assert [e["action"] for e in audit.json()][:1] == ["capture"]
    for answer in (health, audit):
        assert "BK-SECRET-77" not in answer.text
    no_sync = await client.post("/api/admin/sync/now", auth=auth)
    assert no_sync.status_code == 503
