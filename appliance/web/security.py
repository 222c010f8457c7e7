"""The gate in front of every route: Host and Origin checked, bodies bounded, headers set.

A pure ASGI middleware, so that it guards websockets as well as HTTP and refuses a request
before any handler or body parser sees it:

- the ``Host`` header must name this station (DNS rebinding cannot borrow a foreign name);
- every state-changing request (POST, PUT, PATCH, DELETE) and every websocket handshake must
  carry an ``Origin`` that is this station's own (a page on another site cannot drive it);
- a request body larger than its route's bound is refused with 413, whether it declares its
  length or streams it;
- every response carries a Content-Security-Policy without inline script, ``frame-ancestors
  'none'``, ``nosniff`` and ``no-referrer``; API answers are not cached.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The default bound of a request body: every JSON the pages send is far smaller.
DEFAULT_BODY_LIMIT = 64 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """Who may call this app: its host names, its scheme, and how big a body may be.

    ``hosts`` are bare host names or addresses (``127.0.0.1``, ``localhost``,
    ``station-7.local``); any port is accepted with them, since the port is not what a
    rebinding attack changes. ``body_limits`` maps a path prefix to a larger bound for routes
    that need one.
    """

    hosts: frozenset[str]
    schemes: frozenset[str] = frozenset({"http", "https"})
    body_limit: int = DEFAULT_BODY_LIMIT
    body_limits: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @classmethod
    def for_hosts(cls, hosts: Iterable[str], **kwargs: Any) -> SitePolicy:
        """A policy for ``hosts`` (case-insensitive, IPv6 with or without brackets)."""
        return cls(frozenset(_bare(h) for h in hosts), **kwargs)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a ``Host`` header names this site."""
        if not header:
            return False
        try:
            parsed = urlsplit(f"//{header}")
            name = parsed.hostname
            _ = parsed.port  # a malformed port is a malformed host
        except ValueError:
            return False
        return name is not None and _bare(name) in self.hosts

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether an ``Origin`` header is this site's own."""
        if not origin or origin == "null":
            return False
        try:
            parsed = urlsplit(origin)
            _ = parsed.port
        except ValueError:
            return False
        return (parsed.scheme in self.schemes and parsed.hostname is not None
                and _bare(parsed.hostname) in self.hosts)

    def limit_for(self, path: str) -> int:
        """The body bound of the route at ``path``."""
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return self.body_limit


def _bare(host: str) -> str:
    return host.strip().strip("[]").lower()


class SecurityMiddleware:
    """Applies a :class:`SitePolicy` to every HTTP request and websocket handshake."""

    def __init__(self, app: ASGIApp, policy: SitePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request against the policy, then pass it on or refuse it."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self.policy.host_allowed(headers.get("host")):
            await self._refuse(scope, receive, send, 400, "unknown host")
            return
        unsafe = scope["type"] == "websocket" or scope.get("method", "GET") in UNSAFE_METHODS
        if unsafe and not self.policy.origin_allowed(headers.get("origin")):
            await self._refuse(scope, receive, send, 403, "cross-origin request refused")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        limit = self.policy.limit_for(scope.get("path", ""))
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, 413, f"request body over {limit} bytes")
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # answer now, before the app can take the cut body for a malformed one
                    refused = True
                    if not started:
                        await _answer(send, 413, f"request body over {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def secured_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = _with_security_headers(
                    message.get("headers", []), api=scope.get("path", "").startswith("/api/"))
            await send(message)

        try:
            await self.app(scope, bounded_receive, secured_send)
        except Exception:
            if not refused:
                raise  # a refused body may end the app's read with its own error: answered

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int,
                      reason: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # the handshake's websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        await _answer(send, status, reason)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name not in out:  # the first of repeated headers, as browsers send only one
            out[name] = value.decode("latin-1")
    return out


def _with_security_headers(headers: list[tuple[bytes, bytes]], *, api: bool
                           ) -> list[tuple[bytes, bytes]]:
    present = {k.lower() for k, _ in headers}
    out = list(headers)
    out += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
    if api and b"cache-control" not in present:
        out.append((b"cache-control", b"no-store"))
    return out


async def _answer(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": _with_security_headers(headers, api=True)})
    await send({"type": "http.response.body", "body": body})
