"""The station's configuration: one TOML file, strict pydantic models, secrets kept out of it.

Every field carries a description (the README's configuration reference is generated from them)
and every model rejects unknown keys, so a typo is an error that names the key, not a silent
default. The scanner section is validated by the selected driver's own config model, which lives
next to the driver (Frigate's pattern): the core does not know every driver's options.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from appliance.errors import ConfigError, SecretError
from appliance.imaging.config import QualityConfig
from appliance.minutiae.config import MinutiaeConfig
from appliance.sync.settings import CommandSettings, SharingManifest, TelemetrySettings

DEFAULT_CONFIG_PATH = Path("/etc/booking-station/config.toml")


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StationSection(Strict):
    """Who this station is."""

    station_id: str = Field(
        "station-demo",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Unique station id; used in MQTT topics and transaction control numbers.",
    )
    ori: str = Field(
        "XX0000000",
        min_length=9,
        max_length=9,
        description="Originating agency identifier (ANSI/NIST-ITL 1.008 ORI).",
    )
    agency_name: str = Field("Demo Police Department", description="Agency name shown on pages.")
    data_dir: Path = Field(
        Path("/var/lib/booking-station"), description="Directory for the database and backups."
    )


class ScannerSection(BaseModel):
    """Which scanner driver to use; the remaining keys belong to that driver's config model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(
        "emulated", description="Driver type, as registered by the driver's entry point."
    )


class StoreSection(Strict):
    """The encrypted SQLite store."""

    database: str = Field("station.db", description="Database file name, relative to data_dir.")
    key_credential: str = Field(
        "booking-station-db-key",
        description="Name of the 32-byte store key in $CREDENTIALS_DIRECTORY (systemd credential).",
    )
    key_file: Path | None = Field(
        None,
        description="Root-only key file used when no systemd credential is present.",
    )
    min_free_mb: int = Field(
        512, ge=0, description="Refuse new bookings when the data disk has less free space (MiB)."
    )
    biometric_grace_hours: float = Field(
        24.0, ge=0, description="Keep images/templates this long after central confirms storage."
    )
    metadata_retention_days: int = Field(
        365, ge=1, description="Keep booking metadata and audit entries this many days."
    )
    backup_interval_hours: float = Field(
        24.0, gt=0, description="Take a consistent backup of the store this often."
    )
    backup_keep: int = Field(7, ge=1, description="Backups kept in data_dir/backups.")


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
        7 * 24 * 3600, ge=0, description="MQTT 5 session expiry: the broker keeps our session."
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="First reconnect delay (seconds).")
    reconnect_max_s: float = Field(120.0, gt=0, description="Largest reconnect delay (seconds).")
    chunk_size: int = Field(
        128 * 1024 - 1024,
        ge=1024,
        le=128 * 1024 - 256,
        description="Bytes of transaction per chunk message (fits brokers with a 128 KiB cap).",
    )
    window: int = Field(4, ge=1, le=64, description="Transactions in flight at once.")
    ack_timeout_s: float = Field(
        30.0, gt=0, description="Resend the metadata when no answer arrives in this time."
    )
    drain_rate_per_s: float = Field(
        0.0, ge=0, description="Largest transactions sent per second (0: as fast as acknowledged)."
    )
    commands: CommandSettings = Field(
        default_factory=CommandSettings, description="Remote commands from central operations."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Periodic health messages to central."
    )


class WebSection(Strict):
    """The kiosk and admin pages."""

    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the kiosk and admin pages.")
    preview_fps: float = Field(15.0, gt=0, le=60, description="Live preview frames per second.")
    admin_users_credential: str = Field(
        "booking-station-admin-users",
        description="Credential holding 'user:pbkdf2-hash' lines for the admin page.",
    )


class CaptureSection(Strict):
    """The capture sequence."""

    sequence: Literal["tenprint", "flats"] = Field(
        "tenprint", description="tenprint: ten rolled + slaps; flats: slaps only."
    )
    auto_capture: bool = Field(
        True, description="Capture by itself once the live checks hold for "
        "quality.auto_capture_frames preview frames in a row (the Capture button still works)."
    )


class RecordsSection(Strict):
    """The transaction the station builds."""

    profile: str = Field(
        "ebts-car",
        description="ANSI/NIST-ITL profile: 'ebts-car' (FBI criminal tenprint), "
        "'local-tenprint' (only the Type-2 fields the station knows) or 'local-flats' (slaps "
        "only, for the 'flats' capture sequence).",
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from appliance.records.profile import PROFILES

        if value not in PROFILES:
            raise ValueError(f"unknown profile; known: {', '.join(sorted(PROFILES))}")
        return value


class LoggingSection(Strict):
    """Logging to stdout (journald adds timestamps under systemd)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Root level.")
    levels: dict[str, Literal["DEBUG", "INFO", "WARNING", "ERROR"]] = Field(
        default_factory=dict, description="Per-logger levels, e.g. {'appliance.sync' = 'DEBUG'}."
    )


class SystemSection(Strict):
    """Service lifecycle."""

    stop_timeout_s: float = Field(10.0, gt=0, description="Bound on a clean shutdown (seconds).")
    heartbeat_stale_s: float = Field(
        30.0, gt=0, description="A worker silent this long stops the systemd watchdog feed."
    )
    malloc_mmap_threshold_kb: int = Field(
        128,
        ge=0,
        le=32768,
        description="glibc: arrays at least this large are mmapped and given back on free "
        "(keeps the resident size near the working set); 0 leaves the allocator's default.",
    )


class StationConfig(Strict):
    """The whole configuration file."""

    station: StationSection = Field(default_factory=StationSection, description="Identity.")
    scanner: ScannerSection = Field(default_factory=ScannerSection, description="Scanner driver.")
    store: StoreSection = Field(default_factory=StoreSection, description="Encrypted store.")
    mqtt: MqttSection = Field(default_factory=MqttSection, description="Central link.")
    web: WebSection = Field(default_factory=WebSection, description="Kiosk and admin pages.")
    capture: CaptureSection = Field(default_factory=CaptureSection, description="Capture flow.")
    records: RecordsSection = Field(default_factory=RecordsSection, description="Transactions.")
    sharing: SharingManifest = Field(
        default_factory=SharingManifest,
        description="Where central passes bookings on; its version goes in every upload.",
    )
    minutiae: MinutiaeConfig = Field(
        default_factory=MinutiaeConfig,
        description="The on-device minutiae extractor (ONNX) for the Type-9 templates.",
    )
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="Print quality: NFIQ 2 thresholds, overrides, auto-capture, sequence check.",
    )
    logging: LoggingSection = Field(default_factory=LoggingSection, description="Logging.")
    system: SystemSection = Field(default_factory=SystemSection, description="Lifecycle.")

    @model_validator(mode="after")
    def _sequence_fits_profile(self) -> StationConfig:
        from appliance.records.profile import get_profile

        profile = get_profile(self.records.profile)
        if self.capture.sequence == "flats" and profile.rolled_positions:
            raise ValueError(
                f"records.profile: {profile.name} requires rolled prints, which the 'flats' "
                "capture sequence does not take; use 'local-flats' or sequence 'tenprint'"
            )
        return self

    def digest(self) -> str:
        """A short hash of the effective config, for the birth message and the audit log."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]

    @property
    def database_path(self) -> Path:
        """Absolute path of the SQLite database."""
        return self.station.data_dir / self.store.database


class ConfigProblem(BaseModel):
    """One error in a config file, with its dotted key path."""

    path: str
    message: str


def _problems_from(exc: ValidationError, prefix: str = "") -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(ConfigProblem(path=loc or "(top)", message=msg))
    return problems


def validate_config_data(data: dict[str, Any]) -> tuple[StationConfig | None, list[ConfigProblem]]:
    """Validate a parsed TOML document; returns the config or every problem found."""
    problems: list[ConfigProblem] = []
    config: StationConfig | None = None
    try:
        config = StationConfig.model_validate(data)
    except ValidationError as exc:
        problems += _problems_from(exc)
    scanner = data.get("scanner", {})
    if isinstance(scanner, dict) and isinstance(scanner.get("type", "emulated"), str):
        problems += check_scanner_section(ScannerSection.model_validate(scanner))
    return (config if not problems else None), problems


def check_scanner_section(section: ScannerSection) -> list[ConfigProblem]:
    """Validate the scanner table with the selected driver's own config model."""
    from drivers.base import load_driver_class

    try:
        cls = load_driver_class(section.type)
    except (LookupError, ImportError, TypeError) as exc:
        return [ConfigProblem(path="scanner.type", message=str(exc))]
    model = getattr(cls, "Config", None)
    if model is None:
        return []
    try:
        model.model_validate(section.model_dump())
    except ValidationError as exc:
        return _problems_from(exc, "scanner")
    return []


def load_config(path: Path) -> StationConfig:
    """Read and validate a config file; raises ConfigError listing every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    config, problems = validate_config_data(data)
    if config is None:
        lines = "\n".join(f"{path}: {p.path}: {p.message}" for p in problems)
        raise ConfigError(lines)
    return config


def read_secret(name: str, *, fallback_file: Path | None = None) -> bytes:
    """Read a secret from $CREDENTIALS_DIRECTORY/name, else from a root-only file.

    A fallback file that group or others can read is refused: a secret on a shared disk is not
    a secret.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / name
        if candidate.exists():
            return candidate.read_bytes()
    if fallback_file is None:
        raise SecretError(
            f"secret {name!r} not found in $CREDENTIALS_DIRECTORY and no key file is set"
        )
    try:
        st = fallback_file.stat()
    except OSError as exc:
        raise SecretError(f"secret file {fallback_file}: {exc.strerror or exc}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"secret file {fallback_file} is readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
        )
    return fallback_file.read_bytes()
