"""The technician's diagnostics bundle: what support needs, nothing about a subject.

One zip: the running config (secrets redacted), versions, health now and its history, the
scanner's counters, the link, the outbox's metadata, the audit chain's state and the recent
log lines. Every download is audited.
"""

from __future__ import annotations

import asyncio
import io
import json
import platform
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from appliance.store import oversight, samples
from appliance.web.desk import SIGNED_IN, Desk
from appliance.web.services import Services
from appliance.web.sessions import Session


def router(services: Services, desk: Desk, overview: Any) -> APIRouter:
    """The bundle route; ``overview`` is the health route's own function (the same figures)."""
    api = APIRouter()

    @api.get("/api/admin/diagnostics", responses={
        **SIGNED_IN, 200: {"content": {"application/zip": {}},
                           "description": "The redacted diagnostics bundle."}})
    async def bundle(session: Session = desk.technician) -> Response:
        """Download the redacted diagnostics bundle (zip)."""
        parts: dict[str, Any] = {
            "health.json": await overview(),
            "versions.json": {"python": platform.python_version(),
                              "platform": platform.platform(),
                              "models": services.diagnostics().get("models", {})},
            "scanner.json": services.scanner(),
            "config.json": services.configuration.running() if services.configuration
            else None,
        }
        store = services.store
        if store is not None:
            since = datetime.now(UTC) - timedelta(days=30)

            def read(conn: Any) -> dict[str, Any]:
                report, reached = oversight.verify_since(conn, None)
                return {
                    "history.json": {"hourly": samples.series(conn, since, 3600),
                                     "bookings_per_day": samples.bookings_per_day(conn, 30)},
                    "outbox.json": oversight.outbox_rows(conn, 1000),
                    "audit-chain.json": {"ok": report.ok, "entries": report.entries,
                                         "verified_to": reached.seq,
                                         "first_bad": report.first_bad_seq,
                                         "problem": report.problem},
                }

            parts.update(await asyncio.to_thread(store.read, read))
            await store.audit(f"technician:{session.user}", "diagnostics_exported",
                              {"what": "bundle", "files": sorted(parts) + ["logs.txt"]})
        logs = "\n".join(services.recent_logs()) + "\n"
        body = await asyncio.to_thread(_zip, parts, logs)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"diagnostics-{services.station.station_id}-{stamp}.zip"
        return Response(body, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return api


def _zip(parts: dict[str, Any], logs: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in parts.items():
            archive.writestr(name, json.dumps(value, indent=2, sort_keys=True, default=str))
        archive.writestr("logs.txt", logs)
    return buffer.getvalue()
