"""The scanner contract (tests/drivers/scanner_contract.py) on every emulated driver pair."""

from scanner_contract import *  # noqa: F403 - the contract's tests and its `scanner` fixture
