"""Scanner diagnostics on a running station: test capture, frame rate, counters, reconnect."""

from __future__ import annotations

import io
import json

import httpx
from PIL import Image

from tests.conftest import until


async def test_scanner_tools_and_their_refusal_during_a_booking(station_rig) -> None:
    rig = await station_rig(capture={"sequence": "flats"}, records={"profile": "local-flats"})
    station = rig.station
    base = f"http://127.0.0.1:{station.web_port}"
    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}, timeout=120) as tech:
        login = await tech.post("/api/admin/login", json={"user": "tech", "password": rig.password})
        tech.headers["X-CSRF-Token"] = login.json()["csrf"]

        shot = await tech.post("/api/admin/scanner/test-capture")
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
        assert shot.headers["cache-control"] == "no-store"
        image = Image.open(io.BytesIO(shot.content))
        assert max(image.size) <= 480 and image.mode == "L"
        assert station.store.bookings() == []  # the test capture went nowhere

        rate = (await tech.post("/api/admin/scanner/frame-rate", json={"seconds": 1})).json()
        assert rate["frames"] >= 1 and rate["fps"] > 0
        assert (await tech.post("/api/admin/scanner/frame-rate",
                                json={"seconds": 3600})).status_code == 422

        station.worker.counters.errors = 3  # as if the cable had been pulled three times
        assert (await tech.get("/api/admin/scanner")).json()["errors"] == 3
        reset = (await tech.post("/api/admin/scanner/reset-counters")).json()
        assert reset["errors"] == 0

        old_worker = station.worker
        again = await tech.post("/api/admin/scanner/reconnect")
        assert again.status_code == 200
        assert station.worker is not old_worker
        await until(lambda: station.worker.state.value == "ready", what="the reopened scanner")
        # the kiosk's booking service drives the reopened scanner
        await station.booking.start("BK-AFTER-RECONNECT")
        for path in ("/api/admin/scanner/test-capture", "/api/admin/scanner/reconnect"):
            refused = await tech.post(path)
            assert refused.status_code == 409 and "booking" in refused.json()["detail"]
        await station.booking.capture()
        await station.booking.cancel()

        tests = [json.loads(e["detail"])["test"] for e in station.store.audit_entries(200)
                 if e["action"] == "scanner_test"]
        assert sorted(tests) == ["capture", "frame-rate", "reconnect", "reset-counters"]
