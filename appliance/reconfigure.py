"""Changing the running configuration from the technician page, with rollback by itself.

A change is a TOML fragment merged into the config file (its comments and layout kept, through
tomlkit); the result is checked exactly as ``check-config`` checks a file (the same models, the
same machine checks). Applying writes the file atomically, restarts the services whose sections
changed, and waits for them to be healthy; if they are not within the timeout, the previous
file comes back and the services are restarted on it. Every change and every rollback is
audited with its diff, secrets redacted.

Only sections the station can restart while it runs are accepted (``HOT_SECTIONS``); a change
to any other section is refused with the reason, since the station would have to stop to take
it and could not then watch over its own rollback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from appliance.config import ConfigProblem, StationConfig, validate_config_data
from appliance.preflight import preflight

log = logging.getLogger(__name__)

#: Sections the station restarts in place, and the services each one restarts.
HOT_SECTIONS = {"scanner": "scanner", "mqtt": "central link", "capture": "booking service",
                "quality": "booking service"}
#: Keys whose values never leave the station through the page (a scanner's handshake password).
SECRET_WORDS = ("password", "passphrase", "secret", "token")
REDACTED = "(redacted)"
#: Largest change a technician may send (bytes).
MAX_CHANGE_BYTES = 16 * 1024


@dataclass(slots=True)
class Proposal:
    """A checked change: the new file, the new config, what differs, what it restarts."""

    text: str
    config: StationConfig | None
    problems: list[ConfigProblem]
    diff: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the page: problems, diff and restarts (never the file, never a secret)."""
        return {"ok": not self.problems,
                "problems": [p.model_dump() for p in self.problems],
                "diff": self.diff, "restarts": self.restarts}


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if any(word in key.lower() for word in SECRET_WORDS) and not key.endswith("_credential"):
        return REDACTED
    return value


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = ""
                ) -> list[dict[str, Any]]:
    """Dotted keys whose values differ, with both values (secrets redacted)."""
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}.{key}" if prefix else key
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            out += differences(before, after, path)
        elif before != after:
            out.append({"key": path, "from": redact(before, key), "to": redact(after, key)})
    return out


class Reconfigurer:
    """Checks, applies and, when the station is not healthy again in time, rolls back."""

    def __init__(self, *, running: Callable[[], StationConfig], path: Path | None,
                 restart: Callable[[StationConfig, set[str]], Awaitable[None]],
                 healthy: Callable[[set[str]], tuple[bool, str]],
                 audit: Callable[[str, str, dict[str, Any]], Awaitable[Any]],
                 busy: Callable[[], str | None] = lambda: None,
                 timeout_s: float = 60.0, check_machine: bool = True) -> None:
        self._running = running
        self.path = path
        self._restart = restart
        self._healthy = healthy
        self._audit = audit
        self._busy = busy
        self.timeout_s = timeout_s
        self.check_machine = check_machine
        self._lock = asyncio.Lock()
        self._text: str | None = None  # the running file, when the station has none on disk

    def running(self) -> dict[str, Any]:
        """The running configuration, secrets redacted."""
        return {"config": redact(self._running().model_dump(mode="json")),
                "hash": self._running().digest(), "file": str(self.path) if self.path else None,
                "editable": sorted(HOT_SECTIONS), "rollback_after_s": self.timeout_s}

    def propose(self, change: str) -> Proposal:
        """Merge ``change`` into the current file and check the result like check-config."""
        if len(change.encode()) > MAX_CHANGE_BYTES:
            return Proposal("", None, [ConfigProblem(path="(top)", message="change too large")])
        try:
            fragment = tomlkit.parse(change)
            document = tomlkit.parse(self._current_text())
            _merge(document, fragment)
            text = tomlkit.dumps(document)
            data = tomllib.loads(text)
        except (TOMLKitError, tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
            return Proposal("", None, [ConfigProblem(path="(top)", message=f"not TOML: {exc}")])
        config, problems = validate_config_data(data)
        if config is not None and self.check_machine:
            problems += preflight(config).errors
        if config is None or problems:
            return Proposal(text, None, problems)
        old = self._running().model_dump(mode="json")
        diff = differences(old, config.model_dump(mode="json"))
        sections = {d["key"].split(".", 1)[0] for d in diff}
        cold = sorted(sections - set(HOT_SECTIONS))
        if cold:
            return Proposal(text, None, [ConfigProblem(
                path=section, message="takes a restart of the station: change the file and "
                "restart it") for section in cold], diff)
        restarts = sorted({HOT_SECTIONS[s] for s in sections})
        return Proposal(text, config, [], diff, restarts)

    async def apply(self, change: str, actor: str) -> dict[str, Any]:
        """Apply a change; roll back by itself when the station is not healthy in time."""
        async with self._lock:
            proposal = await asyncio.to_thread(self.propose, change)
            busy = self._busy()
            if busy and proposal.config is not None:
                proposal.problems.append(ConfigProblem(path="(station)", message=busy))
            if proposal.problems or proposal.config is None or not proposal.diff:
                return {**proposal.as_dict(), "applied": False, "rolled_back": False}
            before_text, before = self._current_text(), self._running()
            sections = {d["key"].split(".", 1)[0] for d in proposal.diff}
            await asyncio.to_thread(self._write, proposal.text)
            await self._audit(actor, "config_changed", {
                "from": before.digest(), "to": proposal.config.digest(), "diff": proposal.diff})
            await self._restart(proposal.config, sections)
            healthy, why = await self._wait_healthy(sections)
            if healthy:
                log.info("config: change applied (%s)", ", ".join(proposal.restarts))
                return {**proposal.as_dict(), "applied": True, "rolled_back": False}
            log.warning("config: not healthy after the change (%s): rolling back", why)
            await asyncio.to_thread(self._write, before_text)
            await self._restart(before, sections)
            await self._audit(actor, "config_rolled_back", {
                "from": proposal.config.digest(), "to": before.digest(), "reason": why,
                "diff": proposal.diff})
            return {**proposal.as_dict(), "applied": False, "rolled_back": True, "reason": why}

    async def _wait_healthy(self, sections: set[str]) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            healthy, why = self._healthy(sections)
            if healthy or loop.time() >= deadline:
                return healthy, why
            await asyncio.sleep(0.5)

    def _current_text(self) -> str:
        if self.path is not None:
            return self.path.read_text(encoding="utf-8")
        if self._text is None:  # a station started from a config in memory (the demo, tests)
            set_keys = self._running().model_dump(mode="json", exclude_defaults=True)
            self._text = tomlkit.dumps(_without_none(set_keys))
        return self._text

    def _write(self, text: str) -> None:
        """Replace the file atomically (the previous one kept beside it as ``.last-good``)."""
        if self.path is None:
            self._text = text
            return
        fresh = self.path.with_name(self.path.name + ".new")
        mode = self.path.stat().st_mode & 0o777
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        last_good = self.path.with_name(self.path.name + ".last-good")
        last_good.write_text(self.path.read_text(encoding="utf-8"), encoding="utf-8")
        os.chmod(last_good, mode)
        os.replace(fresh, self.path)


def _without_none(value: Any) -> Any:
    """A JSON-like value TOML can hold (it has no null)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def _merge(into: Any, change: Any) -> None:
    """Merge a parsed TOML fragment into a document, table by table."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
