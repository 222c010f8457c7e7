"""Every `booking-central` subcommand is in the README's command table."""

from __future__ import annotations

import re

from central.cli import SUBCOMMANDS, build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_central_subcommand_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "subcommand")
    assert set(sub.choices) == set(SUBCOMMANDS)
    for name in sub.choices:
        assert re.search(rf"`booking-central {name}\b", README), f"{name} missing from README"
