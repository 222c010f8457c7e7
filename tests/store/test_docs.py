"""docs/store.md documents every store command and the key credential names."""

from __future__ import annotations

import inspect
from pathlib import Path

from appliance.cli import store as cli

DOC = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()
COMMANDS = {"rotate_key_command": "rotate-key", "restore_backup_command": "restore-backup",
            "new_store_command": "new", "backup_command": "backup"}


def test_every_store_command_is_documented() -> None:
    functions = {name for name, _ in inspect.getmembers(cli, inspect.isfunction)
                 if name.endswith("_command")}
    assert functions == set(COMMANDS), "a new store command needs a row in docs/store.md"
    for command in COMMANDS.values():
        assert f"`booking-station store {command}" in DOC, command


def test_key_rotation_procedure_names_the_credentials() -> None:
    for needle in ("booking-station-db-key.previous", "--new-key-file", "store_key_rotated",
                   "audit_anchor", "incremental_vacuum"):
        assert needle in DOC, needle
