import re
from pathlib import Path

from appliance.cli import build_parser
from appliance.config_reference import BEGIN, END, reference_markdown

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_config_reference_matches_the_models() -> None:
    section = README.split(BEGIN)[1].split(END)[0].strip()
    assert section == reference_markdown().strip(), (
        "README config reference is stale: regenerate with python tools/update-readme-reference.py")


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        assert re.search(rf"`booking-station {name}\b", README), f"{name} missing from README"


def test_quick_start_has_exactly_two_commands() -> None:
    quick = README.split("## Quick start")[1].split("##")[0]
    block = quick.split("```sh")[1].split("```")[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
