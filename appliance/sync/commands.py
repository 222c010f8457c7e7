"""Remote commands from central operations: what is admitted, and how a signature is checked.

Commands arrive on ``<prefix>/<station>/cmd`` as MQTT 5 requests: the payload is a JSON object
``{"v": 1, "command": name, "args": {...}, "issued_at": unix seconds, "nonce": hex, "kid": key id,
"sig": b64}`` and the PUBLISH carries a ResponseTopic (under ``<prefix>/<station>/reply/``) and
CorrelationData that the answer repeats. Two locks stand in front of every command: the broker's
ACL lets only the central identity publish to ``+/cmd`` (docs/mosquitto-acl.conf), and the
payload must be signed by one of central's keys over its canonical JSON (appliance.sync.signing).
Only a station configured with no central key and ``mqtt.allow_unsigned_commands = true`` obeys
an unsigned command. Every command, signed or not, must be fresh (``issued_at`` within
``max_age_s``) and carry a nonce not seen before. Then the allow-list decides. This module is
pure: it admits or refuses bytes; the service runs what it admits.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import SyncError
from appliance.sync.config import COMMAND_NAMES, CommandSettings
from appliance.sync.signing import BadSignature, CentralKeys, canonical, sign

__all__ = ["COMMAND_VERSION", "Command", "CommandGate", "CommandRefused", "canonical",
           "reply_topic_allowed", "sign"]

COMMAND_VERSION = 1
MAX_COMMAND_BYTES = 8 * 1024
NAME_RE = re.compile(r"^[a-z_]{1,32}$")
NONCE_RE = re.compile(r"^[0-9a-f]{16,64}$")
REPLY_SEGMENT = "reply"


class CommandRefused(SyncError):
    """A command the station will not run; ``reason`` is safe to log, audit and answer."""

    def __init__(self, reason: str, *, name: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name


@dataclass(frozen=True, slots=True)
class Command:
    """An admitted command."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    issued_at: float | None = None
    nonce: str = ""
    signed: bool = False


def reply_topic_allowed(topic: str | None, station_base: str) -> bool:
    """True when a response topic lies in this station's reply space (no confused deputy)."""
    if not topic:
        return False
    prefix = f"{station_base}/{REPLY_SEGMENT}/"
    return (topic.startswith(prefix) and len(topic) <= 256 and "+" not in topic
            and "#" not in topic and len(topic) > len(prefix))


class CommandGate:
    """Admits a command payload or raises :class:`CommandRefused`."""

    def __init__(self, settings: CommandSettings, keys: CentralKeys | None = None,
                 *, allow_unsigned: bool = False, now: Callable[[], float] = time.time,
                 nonce_memory: int = 4096) -> None:
        self.settings = settings
        self.keys = keys or CentralKeys()
        self.allow_unsigned = allow_unsigned and not self.keys
        self._now = now
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._nonce_memory = nonce_memory
        self.signature_failures = 0  # unsigned or badly signed while central's key is set

    @property
    def signatures_required(self) -> bool:
        """True unless the station was told, with no central key, to obey unsigned commands."""
        return not self.allow_unsigned

    def admit(self, payload: bytes) -> Command:
        """Parse, authenticate, check freshness, the nonce and the allow-list."""
        body = _parse(payload)
        raw_name = body.get("command")
        name = raw_name if isinstance(raw_name, str) and NAME_RE.match(raw_name) else ""
        if not name:
            raise CommandRefused("missing or malformed command name")
        if body.get("v") != COMMAND_VERSION:
            raise CommandRefused(f"unsupported command version {body.get('v')!r}"[:80], name=name)
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise CommandRefused("args must be an object", name=name)
        issued_at = body.get("issued_at")
        nonce = body.get("nonce")
        if self.signatures_required:
            self._verify(body, name)
        if not _is_number(issued_at):
            raise CommandRefused("a command needs issued_at (unix seconds)", name=name)
        if not (isinstance(nonce, str) and NONCE_RE.match(nonce)):
            raise CommandRefused("a command needs a nonce of 16-64 lowercase hex digits",
                                 name=name)
        # the broker queues commands for an offline station (persistent session): an old one
        # is refused, so yesterday's "pause" does not run today
        skew = abs(self._now() - float(issued_at))
        if skew > self.settings.max_age_s:
            raise CommandRefused(
                f"issued_at is {skew:.0f} s away from this station's clock "
                f"(limit {self.settings.max_age_s:.0f} s)", name=name)
        if nonce in self._seen:
            raise CommandRefused("replayed command (nonce already used)", name=name)
        self._remember(nonce)
        if not self.settings.enabled:
            raise CommandRefused("commands are disabled on this station", name=name)
        if name not in COMMAND_NAMES:
            raise CommandRefused(f"unknown command {name!r}", name=name)
        if name not in self.settings.allowed:
            raise CommandRefused(f"command {name!r} is not allowed on this station", name=name)
        return Command(name, _check_args(name, args, self.settings), float(issued_at),
                       nonce, self.signatures_required)

    def _verify(self, body: dict[str, Any], name: str) -> None:
        if not self.keys:
            self.signature_failures += 1
            raise CommandRefused("no central key is configured: unsigned commands are refused "
                                 "(mqtt.central_keys)", name=name)
        try:
            self.keys.verify(body)
        except BadSignature as exc:
            self.signature_failures += 1
            reason = "unsigned command" if str(exc) == "unsigned" else str(exc)
            raise CommandRefused(reason, name=name) from exc

    @property
    def nonce_horizon_s(self) -> float:
        """How long a used nonce is remembered: twice the freshness limit."""
        return 2 * self.settings.max_age_s

    def remember(self, used: Iterable[tuple[str, float]]) -> None:
        """Seed the memory with nonces used before: (nonce, unix time) pairs.

        The service seeds it from the audit log on start, so that a signed command replayed
        after a restart (still inside its freshness window) is refused as before.
        """
        for nonce, at in sorted(used, key=lambda item: item[1]):
            self._remember(nonce, at)

    def _remember(self, nonce: str, at: float | None = None) -> None:
        # freshness bounds how long a nonce matters; the memory bounds how many are kept
        horizon = self._now() - self.nonce_horizon_s
        while self._seen and (len(self._seen) >= self._nonce_memory
                              or next(iter(self._seen.values())) < horizon):
            self._seen.popitem(last=False)
        self._seen[nonce] = self._now() if at is None else at
        self._seen.move_to_end(nonce)


def _parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"command too large ({len(payload)} bytes)")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandRefused("command is not JSON") from exc
    except RecursionError as exc:
        raise CommandRefused("command JSON nested too deeply") from exc
    if not isinstance(body, dict):
        raise CommandRefused("command must be a JSON object")
    return body


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_args(name: str, args: dict[str, Any], settings: CommandSettings) -> dict[str, Any]:
    if name == "throttle":
        rate = args.get("rate_per_s")
        if not _is_number(rate) or not 0 <= rate <= settings.max_throttle_per_s:
            raise CommandRefused(
                f"throttle needs rate_per_s between 0 and {settings.max_throttle_per_s:g}",
                name=name)
        extra = set(args) - {"rate_per_s"}
        if extra:
            raise CommandRefused("throttle takes only rate_per_s", name=name)
        return {"rate_per_s": float(rate)}
    if args:
        raise CommandRefused(f"{name} takes no arguments", name=name)
    return {}
