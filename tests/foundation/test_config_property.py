"""Property: a config that check-config passes brings the station to READY, or to a named refusal.

Hypothesis changes a few keys of a working config at a time, with values a person could type
(negative, zero, huge, infinite, NaN, empty, odd text, other choices). Whatever check-config
lets through must start: `run` never meets a configuration mistake it did not warn about.
"""

from __future__ import annotations

import asyncio
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from appliance.app import Station
from appliance.config import StationConfig, validate_config_data
from appliance.errors import ConfigError, StationError
from appliance.preflight import preflight
from appliance.store.crypto import new_key

#: Keys the test keeps fixed: where the station writes, and ports on this machine.
FIXED = {"station.data_dir", "web.port", "mqtt.port", "store.key_file", "store.key_credential",
         "minutiae.model_dir", "logging.levels", "quality.position_thresholds",
         "sharing.destinations", "mqtt.tls", "mqtt.commands.allowed", "system.stop_timeout_s"}

NUMBERS = st.one_of(
    st.integers(0, 100),  # plausible values come first: they are the ones that get through
    st.sampled_from([0, -1, 1, 2, 60, 3600, 10**6, 10**12, 2**63]),
    st.integers(-10**9, 10**9),
)
FLOATS = st.one_of(
    st.floats(0.01, 100),
    st.sampled_from([0.0, -1.0, 0.001, 1.0, 30.0, 1e9, 1e300, float("inf"), float("-inf"),
                     float("nan")]),
    st.floats(-1e6, 1e6),
)
TEXT = st.one_of(st.sampled_from(["", " ", "localhost", "127.0.0.1", "0.0.0.0", "x" * 300,
                                  "no-such-host.invalid", "ünïcödé", "a/b", "%00"]),
                 st.text(max_size=12))


def leaves(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotation for every leaf of the config."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        inner = [a for a in get_args(annotation) if a is not type(None)]
        nested = annotation if isinstance(annotation, type) else (inner[0] if inner else None)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            out.update(leaves(nested, key + "."))
        else:
            out[key] = annotation
    return out


LEAVES = {k: v for k, v in leaves(StationConfig).items()
          if k not in FIXED and not any(k.startswith(f + ".") for f in FIXED)}


def values_for(annotation: Any) -> st.SearchStrategy[Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return st.sampled_from([*args, "bogus"])
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[values_for(a) for a in args if a is not type(None)])
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return NUMBERS
    if annotation is float:
        return FLOATS
    if annotation is str:
        return TEXT
    if annotation is Path:
        return st.sampled_from(["/nowhere/file.pem", "relative/file"])
    return st.one_of(NUMBERS, TEXT)


@st.composite
def changes(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(LEAVES)), min_size=1, max_size=2, unique=True))
    return {k: draw(values_for(LEAVES[k])) for k in keys}


def config_data(base: Path, change: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "station": {"station_id": "prop-1", "data_dir": str(base / "data")},
        "scanner": {"type": "emulated", "seed": 3},
        "store": {"min_free_mb": 1},
        "mqtt": {"host": "127.0.0.1", "port": 9, "reconnect_max_s": 2.0},
        "web": {"port": 0},
        "records": {"profile": "local-tenprint"},
    }
    for key, value in change.items():
        *sections, leaf = key.split(".")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
        table[leaf] = value
    return data


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=changes())
def test_passing_check_config_means_ready(tmp_path_factory, monkeypatch, change) -> None:
    base = tmp_path_factory.mktemp("prop")
    creds = base / "creds"
    creds.mkdir(mode=0o700)
    (creds / "booking-station-db-key").write_text(new_key().hex())
    os.chmod(creds / "booking-station-db-key", 0o600)
    (base / "data").mkdir(mode=0o700)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config, problems = validate_config_data(config_data(base, change))
    if config is None:
        assert problems  # refused, with the reasons
        return
    if preflight(config).errors:
        return  # refused by the machine checks, with the reasons
    asyncio.run(start_and_stop(config))


async def start_and_stop(config: StationConfig) -> None:
    station = Station(config)
    try:
        async with asyncio.timeout(300):
            await station.start()
        assert station.booking is not None, station.store_problem
    except StationError as exc:
        # a clean, named refusal (a port taken, a resource absent) -- but never a config
        # mistake that check-config let through
        assert not isinstance(exc, ConfigError), exc
    finally:
        await station.stop()
