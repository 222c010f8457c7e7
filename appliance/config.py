"""The station's configuration: one TOML file, assembled from the sections each package owns.

Every section's model lives beside the code it configures (``store/config.py``,
``sync/config.py`` and so on); this module only puts them together, checks what spans
sections, and reads the file. Every field carries a description (the README's configuration
reference is generated from them) and every model rejects unknown keys, so a typo is an error
that names the key, not a silent default. The scanner section is validated by the selected
driver's own config model, which lives next to the driver.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from appliance.capture.config import CaptureSection
from appliance.errors import ConfigError
from appliance.imaging.config import QualityConfig
from appliance.minutiae.config import MinutiaeConfig
from appliance.records.config import RecordsSection
from appliance.records.profile import get_profile
from appliance.store.config import StoreSection
from appliance.strict import Strict
from appliance.sync.config import MqttSection, SharingManifest
from appliance.system.config import LoggingSection, StationSection, SystemSection
from appliance.web.config import WebSection
from drivers.registry import ScannerSection, driver_config

DEFAULT_CONFIG_PATH = Path("/etc/booking-station/config.toml")
#: A station's config file is a few KiB; anything this large is not one.
MAX_CONFIG_BYTES = 1024 * 1024


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
    try:
        driver_config(section)
    except (LookupError, ImportError, TypeError) as exc:
        return [ConfigProblem(path="scanner.type", message=str(exc))]
    except ValidationError as exc:
        return _problems_from(exc, "scanner")
    return []


def read_config_data(path: Path) -> dict[str, Any]:
    """The parsed TOML document; ConfigError for a file that cannot be one."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a config file")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: (top): tables or arrays nested too deeply") from exc


def load_config(path: Path) -> StationConfig:
    """Read and validate a config file; raises ConfigError listing every problem."""
    data = read_config_data(path)
    config, problems = validate_config_data(data)
    if config is None:
        lines = "\n".join(f"{path}: {p.path}: {p.message}" for p in problems)
        raise ConfigError(lines)
    return config
