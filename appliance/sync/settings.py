"""Config models of the sync layer that StationConfig does not carry yet.

They live beside the code that reads them (Frigate's pattern). ``SyncSettings.from_config``
reads them from a StationConfig when its ``mqtt.commands``, ``mqtt.telemetry`` and ``sharing``
keys exist, and falls back to the defaults here when they do not, so the service runs with
today's config file and picks the new keys up once the composition root declares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

COMMAND_NAMES = ("ping", "diagnostics", "sync_now", "pause", "resume", "throttle")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandSettings(_Strict):
    """Remote commands from central operations (MQTT 5 request/response)."""

    enabled: bool = Field(True, description="Answer commands on <prefix>/<station>/cmd at all.")
    allowed: tuple[str, ...] = Field(
        COMMAND_NAMES,
        description="Commands this station obeys; any other name is refused (and audited).",
    )
    central_public_key: Path | None = Field(
        None,
        description="PEM Ed25519 public key of central operations; when set, every command must "
        "carry a valid signature over its canonical JSON.",
    )
    max_age_s: float = Field(
        300.0, gt=0, le=86400,
        description="A signed command older (or newer) than this many seconds is refused.",
    )
    max_throttle_per_s: float = Field(
        100.0, gt=0, description="Largest rate a throttle command may set (transactions/s)."
    )

    @model_validator(mode="after")
    def _known_names(self) -> CommandSettings:
        unknown = sorted(set(self.allowed) - set(COMMAND_NAMES))
        if unknown:
            raise ValueError(f"unknown command names in allowed: {unknown}")
        return self


class TelemetrySettings(_Strict):
    """Periodic health messages for central operations."""

    interval_s: float = Field(30.0, gt=0, le=3600, description="Seconds between health messages.")


class Destination(_Strict):
    """One place central passes a booking on to."""

    name: str = Field(min_length=1, max_length=120, description="Recipient, e.g. 'State AFIS'.")
    purpose: str = Field(min_length=1, max_length=300, description="Why it receives the booking.")
    mandatory: bool = Field(
        True, description="True when the law requires it; False when the agency chose it."
    )


class SharingManifest(_Strict):
    """Where central passes bookings on: shown to the subject, named in every upload."""

    version: str = Field(
        "", max_length=64, description="Manifest version; every upload's metadata carries it."
    )
    destinations: tuple[Destination, ...] = Field(
        (), description="Every recipient of a booking beyond central itself."
    )


class SyncSettings(_Strict):
    """Everything the sync service reads beyond MqttSection."""

    commands: CommandSettings = Field(default_factory=CommandSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    sharing: SharingManifest = Field(default_factory=SharingManifest)

    @classmethod
    def from_config(cls, config: Any) -> SyncSettings:
        """Read the sections from a StationConfig where it declares them; defaults otherwise."""
        mqtt = getattr(config, "mqtt", None)
        return cls(
            commands=getattr(mqtt, "commands", None) or CommandSettings(),
            telemetry=getattr(mqtt, "telemetry", None) or TelemetrySettings(),
            sharing=getattr(config, "sharing", None) or SharingManifest(),
        )
