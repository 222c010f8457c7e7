"""The README's configuration reference, generated from the config models.

A test compares the README with this output, so the reference never drifts from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from appliance.config import StationConfig

CHECKOUT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- config-reference:begin -->"
END = "<!-- config-reference:end -->"


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "table"
    if isinstance(value, Path) and value.is_relative_to(CHECKOUT):
        return f"`<install>/{value.relative_to(CHECKOUT)}`"  # not this checkout's absolute path
    try:
        return "`" + json.dumps(value, default=str) + "`"
    except TypeError:
        return f"`{value}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        nested = [a for a in (ann, *getattr(ann, "__args__", ()))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        key = f"{prefix}.{name}" if prefix else name
        if nested:
            rows += _rows(nested[0], key)
            continue
        rows.append(f"| `{key}` | {_default(field)} | {field.description or ''} |")
    return rows


def reference_markdown() -> str:
    """The table of every config key with its default and description, then each driver's."""
    from importlib.metadata import entry_points

    from drivers.registry import ENTRY_POINT_GROUP

    lines = ["| key | default | meaning |", "|---|---|---|", *_rows(StationConfig, "")]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        model = getattr(ep.load(), "Config", None)
        if model is None:
            continue
        lines += ["", f"Scanner options for `type = \"{ep.name}\"`:", "",
                  "| key | default | meaning |", "|---|---|---|",
                  *[r for r in _rows(model, "scanner") if not r.startswith("| `scanner.type`")]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
