"""The operators' HTTP side of ``booking-central metrics``: Prometheus metrics and the fleet page.

Read-only: every route is a GET; nothing here changes a station. The page and its JSON show
station ids, states and figures from the telemetry tree, never a booking number or a print
(the watch never receives one). Requests must name an allowed Host; a browser's cross-site
request (``Sec-Fetch-Site: cross-site`` or a foreign ``Origin``) is refused; every answer carries
a strict Content-Security-Policy and is not cached.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.middleware.trustedhost import TrustedHostMiddleware

from central.fleet import FleetWatch, StationView, assess

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
STATIC = resources.files("central") / "static"


def create_fleet_app(watch: FleetWatch, registry: CollectorRegistry, *,
                     allowed_hosts: list[str], stale_after_s: float = 120.0) -> FastAPI:
    """The app: ``/metrics``, ``/`` (the fleet page), ``/api/stations[/<id>]``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"detail": "read-only"}, status_code=405)
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if request.headers.get("sec-fetch-site") == "cross-site" or (origin and origin != own):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "fleet.html").read_text())

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/stations")
    def stations() -> dict[str, Any]:
        now = time.time()
        return {"at": now, "stations": [summary(v, now, stale_after_s)
                                        for v in watch.snapshot()]}

    @app.get("/api/stations/{station_id}")
    def station(station_id: str) -> dict[str, Any]:
        view = watch.station(station_id)
        if view is None:
            raise HTTPException(404, "no such station")
        now = time.time()
        return {**summary(view, now, stale_after_s), "history": {
            "at": [r.at for r in view.history],
            "queue_depth": [r.queue_depth for r in view.history],
            "drain_per_s": [r.drain_per_s for r in view.history],
            "oldest_unsent_age_s": [r.oldest_unsent_age_s for r in view.history],
        }, "scanner_events": [{"at": at, "state": s} for at, s in view.scanner_events],
            "alerts": list(view.alerts)}

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def summary(view: StationView, now: float, stale_after_s: float) -> dict[str, Any]:
    """What the fleet table shows for one station."""
    colour, reasons = assess(view, now, stale_after_s)
    h = view.health
    return {
        "station_id": view.station_id,
        "colour": colour,
        "reason": "; ".join(reasons) or "ok",
        "state": view.state,
        "last_seen_s": round(now - view.last_seen, 1) if view.last_seen else None,
        "queue_depth": h.get("queue_depth"),
        "backlog_age_s": h.get("oldest_unsent_age_s"),
        "drain_per_s": h.get("drain_per_s"),
        "scanner_state": view.scanner_state if h else "unknown",
        "bookings_today": h.get("bookings_today"),
        "software": view.birth.get("software"),
    }
