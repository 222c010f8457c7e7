"""The base of every config model: strict, frozen, every unknown key an error.

Each package keeps its section's model beside the code it configures; they all derive from
:class:`Strict` so that a typo in the TOML file is an error naming the key, never a silent
default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors; a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
