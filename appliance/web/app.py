"""``create_app(services)``: the kiosk, the live preview and the technician pages, as routers.

The factory takes the station's services (never the composition root, never a driver) and
mounts one router per surface. Handlers are thin: they call a service and turn the station's
errors into plain messages for the person at the screen.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from appliance.errors import CaptureError, ScannerUnavailable, StationError
from appliance.phrase import wording
from appliance.store.errors import DiskFull
from appliance.web import admin, kiosk, preview
from appliance.web.config import WebSection
from appliance.web.officers import OfficerDesk
from appliance.web.security import SecurityMiddleware, SitePolicy
from appliance.web.services import Services

log = logging.getLogger(__name__)


def site_policy(web: WebSection) -> SitePolicy:
    """The host names this station's pages answer to."""
    hosts = {"127.0.0.1", "localhost", "::1", web.host, *web.server_names}  # host: loopback
    if web.technician_tls is not None:
        # the names the installer's certificate is made for: this machine's own name is no
        # attacker's domain, so a rebinding page cannot borrow it
        own = socket.gethostname()
        hosts.update({own, f"{own}.local", *web.technician_tls.names})
    return SitePolicy.for_hosts(hosts)


def create_app(services: Services, *, clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """Build the web app around the station's running services (``clock``: the idle lock's)."""
    # the API description is served by the technician router, to a signed-in technician only
    app = FastAPI(title="booking-station", version="0.1.0", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(SecurityMiddleware, policy=site_policy(services.web))

    # Each refusal carries, beside the English, the code and figures the kiosk words it from
    @app.exception_handler(ScannerUnavailable)
    async def scanner_error(_r: Request, exc: ScannerUnavailable) -> JSONResponse:
        return JSONResponse({"error": f"scanner problem: {exc}",
                             "words": {"code": "scanner_unavailable", "params": {}}},
                            status_code=503)

    @app.exception_handler(CaptureError)
    async def capture_error(_r: Request, exc: CaptureError) -> JSONResponse:
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        return JSONResponse({"error": str(exc), "words": wording(said)}, status_code=409)

    @app.exception_handler(DiskFull)
    async def disk_full(_r: Request, exc: DiskFull) -> JSONResponse:
        return JSONResponse({"error": str(exc), "words": {"code": "disk_full", "params": {}}},
                            status_code=507)

    @app.exception_handler(StationError)
    async def station_error(_r: Request, exc: StationError) -> JSONResponse:
        log.warning("web: request failed: %s", type(exc).__name__)
        return JSONResponse({"error": str(exc)}, status_code=500)

    desk = OfficerDesk(services.web, services.store.audit if services.store else None,
                       clock=clock)
    app.include_router(kiosk.router(services, desk))
    app.include_router(preview.router(services, desk))
    app.include_router(admin.router(services))
    return app
