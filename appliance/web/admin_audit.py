"""The technician page's audit and outbox views: filtered, bounded, metadata only.

The audit chain is verified incrementally: each poll checks only the entries written since the
last verified one (after checking that one still holds); a full walk from the anchor is a
separate request. The outbox is shown by a hash of each booking id, never the booking.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from appliance.store import oversight
from appliance.store.audit import ACTIONS
from appliance.web.desk import SIGNED_IN, Desk, unavailable
from appliance.web.services import Services
from appliance.web.sessions import Session

#: Most audit entries or outbox rows one request returns.
PAGE_MAX = 1000
ACTOR_PATTERN = r"^[A-Za-z0-9_.@:-]{1,80}$"
AuditAction = Literal[tuple(sorted(ACTIONS))]  # type: ignore[valid-type]


class AuditEntry(BaseModel):
    """One audit entry: ids, actions and actors, never personal data."""

    seq: int
    at: str
    actor: str
    action: str
    detail: str


class ChainView(BaseModel):
    """What a verification found."""

    ok: bool
    checked: int  # entries walked by this verification
    head: str
    verified_to: int  # the last entry known good
    first_bad: int | None
    problem: str
    anchor_seq: int


class OutboxRow(BaseModel):
    """One transaction in the outbox, by a hash of its booking id."""

    booking: str
    size: int
    state: str
    attempts: int
    age_s: float
    next_attempt_in_s: float


class OutboxView(BaseModel):
    """The outbox and its drain."""

    rows: list[OutboxRow]
    paused: bool
    throttle_per_s: float
    connected: bool


class Throttle(BaseModel):
    """New uploads per second (0: no limit)."""

    model_config = ConfigDict(extra="forbid")
    per_s: float = Field(ge=0, le=1000, allow_inf_nan=False)


def router(services: Services, desk: Desk) -> APIRouter:
    """Audit and outbox routes."""
    api = APIRouter()
    no_store, no_sync = unavailable("The store"), unavailable("Sync")
    checkpoint: list[oversight.Checkpoint | None] = [None]

    def store_or_503() -> Any:
        if services.store is None:
            raise HTTPException(503, services.problem() or "the store is not open")
        return services.store

    def chosen(since: datetime | None, until: datetime | None, actor: str | None,
               action: str | None, before: int | None = None) -> oversight.AuditFilter:
        return oversight.AuditFilter(
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            actor=actor, action=action, before_seq=before)

    @api.get("/api/admin/audit", responses={**SIGNED_IN, **no_store})
    async def audit_entries(
        limit: int = Query(100, ge=1, le=PAGE_MAX),
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = Query(None, pattern=ACTOR_PATTERN),
        action: AuditAction | None = None,
        before: int | None = Query(None, ge=1, le=2**62),
        _s: Session = desk.reader,
    ) -> list[AuditEntry]:
        """The newest audit entries that match, newest first."""
        store = store_or_503()
        rows = await asyncio.to_thread(
            store.read, lambda c: oversight.audit_page(
                c, chosen(since, until, actor, action, before), limit))
        return [AuditEntry(**row) for row in rows]

    @api.get("/api/admin/audit/export", responses={
        **SIGNED_IN, **no_store,
        200: {"content": {"application/x-ndjson": {}},
              "description": "Every matching entry, oldest first, one JSON object a line."}})
    async def audit_export(
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = Query(None, pattern=ACTOR_PATTERN),
        action: AuditAction | None = None,
        session: Session = desk.reader,
    ) -> StreamingResponse:
        """The audit log as JSON lines, with each entry's chain hashes."""
        store = store_or_503()
        lines = await asyncio.to_thread(store.read, lambda c: list(
            oversight.audit_lines(c, chosen(since, until, actor, action))))
        await store.audit(f"technician:{session.user}", "diagnostics_exported",
                          {"what": "audit log", "entries": len(lines)})

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield line

        return StreamingResponse(body(), media_type="application/x-ndjson", headers={
            "Content-Disposition": 'attachment; filename="audit.jsonl"'})

    @api.get("/api/admin/audit/verify", responses={**SIGNED_IN, **no_store})
    async def audit_verify(whole: bool = False, _s: Session = desk.reader) -> ChainView:
        """Verify the entries since the last verified one (``whole``: from the anchor)."""
        store = store_or_503()
        start = None if whole else checkpoint[0]
        report, reached = await asyncio.to_thread(
            store.read, lambda c: oversight.verify_since(c, start))
        checkpoint[0] = reached if report.ok else None  # a broken chain is walked whole
        return ChainView(ok=report.ok, checked=report.entries, head=report.head,
                         verified_to=reached.seq, first_bad=report.first_bad_seq,
                         problem=report.problem, anchor_seq=report.anchor_seq)

    @api.get("/api/admin/outbox", responses={**SIGNED_IN, **no_store})
    async def outbox_view(limit: int = Query(100, ge=1, le=PAGE_MAX),
                          _s: Session = desk.technician) -> OutboxView:
        """Unsent transactions first, then the newest delivered: metadata only."""
        store = store_or_503()
        rows = await asyncio.to_thread(store.read, lambda c: oversight.outbox_rows(c, limit))
        sync = services.sync
        return OutboxView(rows=[OutboxRow(**r) for r in rows],
                          paused=bool(sync and sync.uploader.paused),
                          throttle_per_s=sync.uploader.rate_per_s if sync else 0.0,
                          connected=bool(sync and sync.link.connected))

    @api.post("/api/admin/outbox/retry", responses={**SIGNED_IN, **no_store})
    async def outbox_retry(session: Session = desk.technician) -> dict[str, int]:
        """Every queued transaction waiting for a later attempt is tried now."""
        store = store_or_503()
        count = await store.write(oversight.retry_now)
        if services.sync is not None:
            services.sync.uploader.wake()
        await store.audit(f"technician:{session.user}", "remote_command",
                          {"command": "outbox-retry", "rows": count, "via": "admin page"})
        return {"due_now": count}

    @api.post("/api/admin/outbox/throttle", responses={**SIGNED_IN, **no_sync})
    async def outbox_throttle(body: Throttle, session: Session = desk.technician
                              ) -> dict[str, float]:
        """Limit new uploads per second (0 lifts the limit)."""
        if services.sync is None:
            raise HTTPException(503, "sync is not running")
        services.sync.uploader.throttle(body.per_s)
        if services.store is not None:
            await services.store.audit(f"technician:{session.user}", "remote_command",
                                       {"command": "outbox-throttle", "per_s": body.per_s,
                                        "via": "admin page"})
        return {"throttle_per_s": services.sync.uploader.rate_per_s}

    return api
