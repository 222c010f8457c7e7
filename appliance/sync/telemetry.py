"""Birth, will, health and alert messages for central operations (JSON, see docs/asyncapi.yaml)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from appliance import __version__
from appliance.system.health import Health

__all__ = ["Health", "birth", "encode", "event", "offline_clean", "will"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def birth(station_id: str, *, capabilities: dict[str, Any] | None, scanner: dict[str, Any] | None,
          config_hash: str, models: dict[str, str] | None = None,
          manifest_version: str = "", protocol: int = 1, instance: str = "") -> bytes:
    """The retained ``online`` status: who this station is and what it can do."""
    return encode({
        "state": "online",
        "station_id": station_id,
        "software": __version__,
        "protocol": protocol,
        "models": models or {},
        "scanner": scanner or {},
        "capabilities": capabilities or {},
        "config_hash": config_hash,
        "manifest_version": manifest_version,
        "instance": instance,
        "at": _now(),
    })


def will(station_id: str) -> bytes:
    """The retained ``offline`` status the broker publishes if the station vanishes."""
    return encode({"state": "offline", "station_id": station_id, "clean": False})


def offline_clean(station_id: str) -> bytes:
    """The retained ``offline`` status the station publishes when it stops on purpose."""
    return encode({"state": "offline", "station_id": station_id, "clean": True, "at": _now()})


def event(station_id: str, kind: str, message: str, *, severity: str = "warning",
          detail: dict[str, Any] | None = None) -> bytes:
    """One alert for central operations (never personal data: callers pass ids and figures)."""
    return encode({
        "station_id": station_id,
        "type": "alert",
        "kind": kind,
        "severity": severity,
        "message": message[:500],
        "detail": detail or {},
        "at": _now(),
    })
