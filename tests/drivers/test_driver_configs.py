"""Driver and emulator configs: strict, described, and reachable through the entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from pydantic import BaseModel

from drivers.faults import FaultConfig
from drivers.r30x import R30xConfig, R30xDriver
from drivers.r30x.emulator import R30xEmulatorConfig
from drivers.registry import ENTRY_POINT_GROUP, load_driver_class
from drivers.uareu import UareUConfig, UareUDriver, UareUEmulatorConfig

MODELS = [FaultConfig, R30xConfig, R30xEmulatorConfig, UareUConfig, UareUEmulatorConfig]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_is_described_and_unknown_keys_are_refused(model: type[BaseModel]) -> None:
    undescribed = [name for name, f in model.model_fields.items() if not f.description]
    assert not undescribed
    with pytest.raises(ValueError, match="extra"):
        model.model_validate({"no_such_key": 1})


@pytest.mark.parametrize(
    ("driver", "section"),
    [
        (R30xDriver, {"type": "r30x", "port": "/dev/serial/by-id/usb-x", "baudrate": 115200}),
        (UareUDriver, {"type": "uareu", "product_id": 0x000A, "usb_backend": "emulator",
                       "emulator": {"faults": {"dirty_platen": 0.3}}}),
    ],
)
def test_a_scanner_section_builds_its_driver(driver: type, section: dict) -> None:
    config = driver.Config.model_validate(section)
    built = driver(config)
    assert built.type_name == section["type"]
    assert built.config == config


@pytest.mark.parametrize(("name", "cls"), [("r30x", R30xDriver), ("uareu", UareUDriver)])
def test_entry_points_load_the_drivers(name: str, cls: type) -> None:
    if name not in {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}:
        pytest.skip(f"entry point {name!r} not installed yet (pyproject lines pending)")
    assert load_driver_class(name) is cls
