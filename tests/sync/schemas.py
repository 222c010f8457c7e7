"""The AsyncAPI document and its JSON Schemas, as the tests use them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass(frozen=True)
class Channel:
    name: str
    address: str
    pattern: re.Pattern[str]
    schema_ref: str | None  # None: binary payload
    max_bytes: int | None


@cache
def asyncapi() -> dict:
    return yaml.safe_load((DOCS / "asyncapi.yaml").read_text())


def _resolve(doc: dict, ref: str) -> dict:
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@cache
def channels() -> tuple[Channel, ...]:
    doc = asyncapi()
    out = []
    for name, channel in doc["channels"].items():
        address = channel["address"]
        regex = "^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(address)) + "$"
        [message] = channel["messages"].values()
        message = _resolve(doc, message["$ref"]) if "$ref" in message else message
        payload = message["payload"]
        ref = payload.get("$ref")
        out.append(Channel(name, address, re.compile(regex), ref,
                           payload.get("maxLength") if ref is None else None))
    return tuple(out)


@cache
def validator(ref: str) -> jsonschema.Draft7Validator:
    schema = json.loads((DOCS / ref).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def channel_for(topic: str) -> Channel:
    matches = [c for c in channels() if c.pattern.match(topic)]
    assert len(matches) == 1, f"{topic} matches {[c.name for c in matches]} in docs/asyncapi.yaml"
    return matches[0]


def validate(topic: str, payload: bytes) -> Channel:
    """Raise when a real message does not follow the documented channel and schema."""
    channel = channel_for(topic)
    if channel.schema_ref is None:
        assert channel.max_bytes is None or len(payload) <= channel.max_bytes
    else:
        validator(channel.schema_ref).validate(json.loads(payload))
    return channel
