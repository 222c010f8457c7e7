"""The kiosk API as a signed-in officer drives it, over plain HTTP (for stations in a process).

Standard library only: a cookie jar for the officer's session, the session's CSRF token on
every POST, and the station's own Origin, as the kiosk page sends them.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.request
from typing import Any

#: The officer the tests' credentials hold (see demo.run.prepare_officer).
OFFICER, PIN = "officer1", "246810"


class KioskClient:
    """One officer's browser, signed in at ``http://127.0.0.1:port``."""

    def __init__(self, port: int, officer: str = OFFICER, pin: str = PIN,
                 timeout: float = 120) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.timeout = timeout
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self._csrf = ""
        signed_in = self.post("/api/kiosk/signin", {"officer": officer, "pin": pin})
        self._csrf = signed_in["csrf"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        """One JSON request; HTTP errors raise urllib.error.HTTPError."""
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Content-Type": "application/json", "Origin": self.base, "X-CSRF-Token": self._csrf})
        with self._opener.open(req, timeout=timeout or self.timeout) as res:
            return json.loads(res.read())

    def post(self, path: str, body: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        """POST ``body`` (``{}`` when None)."""
        return self.call("POST", path, body, timeout)
