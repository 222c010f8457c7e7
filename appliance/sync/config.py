"""The sync section of the configuration: the broker link, commands, telemetry, sharing.

Kept beside the code that reads it; ``appliance.config`` only assembles it into the station's
whole configuration.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from appliance.strict import Strict

COMMAND_NAMES = ("ping", "diagnostics", "sync_now", "pause", "resume", "throttle")


class CommandSettings(Strict):
    """Remote commands from central operations (MQTT 5 request/response)."""

    enabled: bool = Field(True, description="Answer commands on <prefix>/<station>/cmd at all.")
    allowed: tuple[str, ...] = Field(
        COMMAND_NAMES,
        description="Commands this station obeys; any other name is refused (and audited).",
    )
    max_age_s: float = Field(
        300.0, gt=0, le=86400,
        description="A command whose issued_at is further than this many seconds from the "
        "station's clock is refused.",
    )
    max_throttle_per_s: float = Field(
        100.0, gt=0, le=100_000,
        description="Largest rate a throttle command may set (transactions/s)."
    )

    @model_validator(mode="after")
    def _known_names(self) -> CommandSettings:
        unknown = sorted(set(self.allowed) - set(COMMAND_NAMES))
        if unknown:
            raise ValueError(f"unknown command names in allowed: {unknown}")
        return self


class TelemetrySettings(Strict):
    """Periodic health messages for central operations."""

    interval_s: float = Field(30.0, gt=0, le=3600, description="Seconds between health messages.")


class Destination(Strict):
    """One place central passes a booking on to."""

    name: str = Field(min_length=1, max_length=120, description="Recipient, e.g. 'State AFIS'.")
    purpose: str = Field(min_length=1, max_length=300, description="Why it receives the booking.")
    mandatory: bool = Field(
        True, description="True when the law requires it; False when the agency chose it."
    )


class SharingManifest(Strict):
    """Where central passes bookings on: shown to the subject, named in every upload."""

    version: str = Field(
        "", max_length=64, description="Manifest version; every upload's metadata carries it."
    )
    destinations: tuple[Destination, ...] = Field(
        (), description="Every recipient of a booking beyond central itself."
    )


class TlsSection(Strict):
    """Mutual TLS towards the broker."""

    ca_file: Path = Field(description="CA certificate(s) that signed the broker's certificate.")
    cert_file: Path = Field(description="This station's client certificate.")
    key_file: Path = Field(description="This station's client key (root-only).")
    key_passphrase_credential: str | None = Field(
        None, description="Credential name holding the client key's passphrase, if it has one."
    )


class MqttSection(Strict):
    """The link to the central service."""

    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    tls: TlsSection | None = Field(None, description="Mutual TLS settings; omit for plain TCP.")
    username: str | None = Field(None, description="Optional MQTT user name.")
    password_credential: str | None = Field(
        None, description="Credential name holding the MQTT password, if a username is set."
    )
    topic_prefix: str = Field("bst", description="First level of every topic this station uses.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive interval (seconds).")
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, le=2**32 - 1,
        description="MQTT 5 session expiry: the broker keeps our session."
    )
    reconnect_min_s: float = Field(
        1.0, gt=0, le=3600, description="First reconnect delay (seconds)."
    )
    reconnect_max_s: float = Field(
        120.0, gt=0, le=3600, description="Largest reconnect delay (seconds)."
    )
    chunk_size: int = Field(
        128 * 1024 - 1024,
        ge=1024,
        le=128 * 1024 - 256,
        description="Bytes of transaction per chunk message (fits brokers with a 128 KiB cap).",
    )
    window: int = Field(4, ge=1, le=64, description="Transactions in flight at once.")
    ack_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Resend the metadata when no answer arrives in this time."
    )
    drain_rate_per_s: float = Field(
        0.0, ge=0, le=100_000,
        description="Largest transactions sent per second (0: as fast as acknowledged)."
    )
    central_keys: tuple[Path, ...] = Field(
        (), max_length=8,
        description="PEM Ed25519 public keys of central: every ack and command must be signed "
        "by one of them (list two during a key rollover).",
    )
    allow_unsigned_acks: bool = Field(
        False, description="Test benches only: with no central_keys, apply unsigned acks "
        "(anyone on the broker could then mark a booking delivered).",
    )
    allow_unsigned_commands: bool = Field(
        False, description="Test benches only: with no central_keys, obey unsigned commands "
        "(anyone on the broker could then pause or throttle the station).",
    )
    takeover_backoff_s: float = Field(
        60.0, gt=0, le=3600,
        description="Wait before reconnecting after another client took this station's "
        "session (same client id); doubles while it keeps happening.",
    )
    commands: CommandSettings = Field(
        default_factory=CommandSettings, description="Remote commands from central operations."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Periodic health messages to central."
    )

    @model_validator(mode="after")
    def _backoff_grows(self) -> MqttSection:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s is larger than reconnect_max_s")
        return self
