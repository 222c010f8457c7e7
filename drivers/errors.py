"""One exception tree for every scanner driver, rooted in ``OSError`` like pyserial and pyusb.

Each error names the device and the operation, so a log line or a kiosk banner says which scanner
failed doing what, without the caller having to know the protocol.
"""

from __future__ import annotations


class ScannerError(OSError):
    """Root of every scanner failure."""

    def __init__(self, message: str, *, device: str = "", operation: str = "") -> None:
        self.device = device
        self.operation = operation
        where = " ".join(part for part in (device, operation) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ScannerDisconnected(ScannerError):
    """The device went away (cable pulled, port closed, USB device gone)."""


class ScannerTimeout(ScannerError):
    """The device did not answer within the operation's time limit."""


class ProtocolError(ScannerError):
    """The device answered with something the protocol does not allow (bad checksum, framing)."""


class DeviceRefused(ScannerError):
    """The device answered with an error code (wrong password, no finger, bad image)."""


class NoFinger(DeviceRefused):
    """No finger on the platen when a capture was asked for."""


class UnsupportedMode(ScannerError):
    """The driver cannot capture in the requested mode."""
