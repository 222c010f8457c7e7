"""The scanner contract (tests/drivers/scanner_contract.py) on the device given by --scanner."""

from scanner_contract import *  # noqa: F403 - the contract's tests and its `scanner` fixture
