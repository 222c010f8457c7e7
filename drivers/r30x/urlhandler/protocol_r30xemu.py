"""The ``r30xemu://`` pyserial URL: a serial port with an emulated R30x module on the far end.

``serial.serial_for_url("r30xemu://?finger_seed=3&no_finger=1", baudrate=57600)`` returns a
port whose other end is an :class:`~drivers.r30x.emulator.R30xEmulator` thread, connected through
a socket pair. Query keys are the fields of
:class:`~drivers.r30x.emulator.R30xEmulatorConfig` (``baudrate``, ``pace``, ``packet_size``,
``address``, ``password``, ``acquire_s``, ``finger_source``, ``finger_seed``) and of
:class:`~drivers.faults.FaultConfig` (``no_finger``, ``unplug_mid_transfer`` ...); ``faults`` may
also carry the whole fault config as JSON. An unknown key is an error that lists the known ones.

Each ``open()`` powers up a fresh module, so closing and reopening the port is a replug.
"""

from __future__ import annotations

import fcntl
import json
import select
import socket
import struct
import termios
import time
import urllib.parse
from typing import Any

from pydantic import ValidationError
from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

from drivers.faults import FaultConfig
from drivers.r30x.emulator import R30xEmulator, R30xEmulatorConfig

SCHEME = "r30xemu"


def config_from_url(url: str) -> R30xEmulatorConfig:
    """Parse an ``r30xemu://?key=value&...`` URL into an emulator config (ValueError if bad)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise ValueError(f"expected a {SCHEME}:// URL, got {url!r}")
    emulator: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key == "faults":
            faults.update(json.loads(value))
        elif key in R30xEmulatorConfig.model_fields and key != "faults":
            emulator[key] = _number(value) if key in ("address", "password") else value
        elif key in FaultConfig.model_fields:
            faults[key] = value
        else:
            known = sorted(set(R30xEmulatorConfig.model_fields) | set(FaultConfig.model_fields))
            raise ValueError(f"unknown {SCHEME}:// option {key!r}; known: {', '.join(known)}")
    try:
        return R30xEmulatorConfig(**emulator, faults=FaultConfig(**faults))
    except ValidationError as exc:
        raise ValueError(f"bad {SCHEME}:// URL: {exc}") from exc


def _number(text: str) -> int:
    return int(text, 0)


class Serial(SerialBase):
    """A pyserial port whose far end is an emulated R30x module."""

    BAUDRATES = (9600, 19200, 28800, 38400, 48000, 57600, 67200, 76800, 86400, 96000, 105600,
                 115200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.emulator: R30xEmulator | None = None
        self._sock: socket.socket | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Power up a fresh emulated module and connect to it."""
        if self.is_open:
            raise SerialException("port is already open")
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        config = config_from_url(str(self._port))
        host_end, device_end = socket.socketpair()
        self._sock = host_end
        self.emulator = R30xEmulator.on_socket(device_end, config)
        self.emulator.host_baudrate = lambda: self._baudrate
        self.emulator.start()
        self.is_open = True

    def close(self) -> None:
        """Disconnect; the emulated module powers off."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        self.is_open = False

    def _reconfigure_port(self) -> None:
        """Nothing to configure: the emulator reads the baud rate when bytes arrive."""

    def _update_break_state(self) -> None:
        """No break condition on an emulated line."""

    def _update_rts_state(self) -> None:
        """RTS is not wired on the modules."""

    def _update_dtr_state(self) -> None:
        """DTR is not wired on the modules."""

    @property
    def cts(self) -> bool:
        """Clear To Send: always (no flow control)."""
        return True

    @property
    def dsr(self) -> bool:
        """Data Set Ready: always."""
        return True

    @property
    def ri(self) -> bool:
        """Ring Indicator: never."""
        return False

    @property
    def cd(self) -> bool:
        """Carrier Detect: always."""
        return True

    def _socket(self) -> socket.socket:
        if not self.is_open or self._sock is None:
            raise PortNotOpenError()
        return self._sock

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""
        sock = self._socket()
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
        return struct.unpack("i", buf)[0]

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes, waiting at most the port's timeout."""
        sock = self._socket()
        data = bytearray()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while len(data) < size:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([sock], [], [], wait)
            if not ready:
                break
            try:
                chunk = sock.recv(size - len(data))
            except OSError as exc:
                raise SerialException(f"read failed: {exc}") from exc
            if not chunk:
                raise SerialException("device disconnected (emulated cable pulled)")
            data += chunk
            if deadline is not None and time.monotonic() >= deadline:
                break
        return bytes(data)

    def write(self, data: bytes) -> int:
        """Send ``data`` to the module."""
        sock = self._socket()
        payload = to_bytes(data)
        try:
            sock.sendall(payload)
        except OSError as exc:
            raise SerialException(f"write failed: {exc}") from exc
        return len(payload)

    def reset_input_buffer(self) -> None:
        """Discard received bytes."""
        sock = self._socket()
        while select.select([sock], [], [], 0)[0]:
            try:
                if not sock.recv(65536):
                    return  # disconnected: the next read reports it
            except OSError:
                return

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the way out."""
        self._socket()
