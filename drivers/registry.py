"""Which driver serves the configured scanner: entry points, driver config models, building.

Drivers register under the ``booking_station.drivers`` entry point group (a third-party driver
registers the same way). Each driver class may carry a pydantic ``Config`` model: the
``[scanner]`` table of the station's config file is validated by that model, here and nowhere
else, both when the config is checked and when the driver is built.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import BaseModel, ConfigDict, Field

from drivers.base import ScannerDriver
from drivers.isolated import IsolatedDriver

ENTRY_POINT_GROUP = "booking_station.drivers"


class ScannerSection(BaseModel):
    """Which scanner driver to use; the remaining keys belong to that driver's config model."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    type: str = Field(
        "emulated", description="Driver type, as registered by the driver's entry point."
    )


def driver_types() -> list[str]:
    """Every installed driver type, sorted."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_driver_class(type_name: str) -> type[ScannerDriver]:
    """The driver class registered under ``type_name`` in the entry point group."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == type_name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, ScannerDriver)):
                raise TypeError(f"entry point {ep.value} is not a ScannerDriver")
            return cls
    raise LookupError(
        f"no scanner driver of type {type_name!r}; installed: {', '.join(driver_types())}"
    )


def driver_config(section: ScannerSection) -> tuple[type[ScannerDriver], BaseModel | None]:
    """The driver class and its validated config for a ``[scanner]`` table.

    Raises LookupError, ImportError or TypeError when no usable driver has that type, and
    pydantic's ValidationError when the driver's own model refuses the table.
    """
    cls = load_driver_class(section.type)
    model = getattr(cls, "Config", None)
    if model is None:
        return cls, None
    return cls, model.model_validate(section.model_dump())


def build_driver(section: ScannerSection) -> ScannerDriver:
    """The configured driver, with its own config model applied.

    A driver whose config asks for ``process = true`` (the emulator) is served from a child
    process (:class:`drivers.isolated.IsolatedDriver`).
    """
    cls, config = driver_config(section)
    if config is None:
        return cls()  # type: ignore[call-arg]
    if getattr(config, "process", False):
        return IsolatedDriver(cls, config)
    return cls(config)  # type: ignore[call-arg]
