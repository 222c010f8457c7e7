"""A scanner driver run in a child process, the way a real scanner images in its own hardware.

The livescan emulator draws its virtual subject's fingers in the process that drives it: tens of
MB of master fingers and, while it draws a four-finger slap, tens of MB more. A station with a
real scanner holds none of that; its driver only receives finished frames. ``IsolatedDriver``
runs any driver in a child process (a fresh interpreter, ``python -m drivers.isolated``: the
station's threads are never forked, and its main module is not imported again) and passes it each
call over a socket pair, so the station process holds what it would hold with hardware
and the emulator's memory is the child's own. The emulator selects it with ``process = true``.

Errors cross the pipe unchanged (the driver exception tree pickles). A child that dies or stops
answering is a pulled cable to the station: :class:`~drivers.errors.ScannerDisconnected` or
:class:`~drivers.errors.ScannerTimeout`, and the device worker's reopen starts a fresh child.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pydantic import BaseModel

from drivers.base import Capabilities, CaptureMode, Frame, Identity, Indicator, ScannerDriver
from drivers.errors import ScannerDisconnected, ScannerTimeout

#: Methods the child serves: the driver interface and the emulator's own cable knob.
_SERVED = frozenset(
    {
        "name",
        "open",
        "close",
        "identity",
        "capabilities",
        "finger_present",
        "preview",
        "capture",
        "indicate",
        "guide",
        "reset",
        "replug",
    }
)


def _serve(conn: Connection) -> None:
    """The child's loop: build the driver from the first message, answer calls until EOF."""
    try:
        cls, config = conn.recv()
    except (EOFError, OSError):
        return
    driver = cls(config)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the station went away
            break
        if request is None:
            break
        method, args = request
        try:
            attr = getattr(driver, method)
            value = attr(*args) if callable(attr) else attr
            reply: tuple[str, Any] = ("ok", value)
        except Exception as exc:  # returned to the caller, who raises it
            reply = ("error", exc)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            break
    try:
        driver.close()
    except Exception:  # noqa: S110 - the process ends either way
        pass


def _stop(process: subprocess.Popen[bytes], conn: Connection) -> None:
    try:
        conn.send(None)
    except (OSError, ValueError):
        pass
    conn.close()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class IsolatedDriver(ScannerDriver):
    """``cls(config)`` served from a child process; same interface, same errors."""

    def __init__(
        self, cls: type[ScannerDriver], config: BaseModel, *, timeout_s: float = 120.0
    ) -> None:
        self.type_name = cls.type_name
        self._cls = cls
        self._config = config
        #: How long each call waits for the child's answer before the child counts as hung.
        self.timeout_s = timeout_s
        self._name = f"{cls.type_name} (child process)"
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: Callable[[], None] | None = None

    # ---- the child ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for memory figures and tests)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _start(self) -> None:
        parent, child = socket.socketpair()
        with parent, child:
            # The child imports what this process imports (the driver class is pickled by name).
            path = os.pathsep.join(p for p in sys.path if p)
            process = subprocess.Popen(
                [sys.executable, "-m", "drivers.isolated", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
            conn = Connection(parent.detach())
        self._conn, self._process = conn, process
        self._finalizer = weakref.finalize(self, _stop, process, conn)
        conn.send((self._cls, self._config))
        self._name = str(self._call("name"))

    def shutdown(self) -> None:
        """Stop the child (the next call starts a fresh one)."""
        if self._finalizer is not None:
            self._finalizer()
        self._conn = self._process = self._finalizer = None

    def _call(self, method: str, *args: Any) -> Any:
        assert method in _SERVED, method
        if self._conn is None:
            self._start()
        conn = self._conn
        assert conn is not None
        try:
            conn.send((method, args))
            reply = conn.recv() if conn.poll(self.timeout_s) else None
        except (EOFError, OSError) as exc:
            self.shutdown()
            raise ScannerDisconnected(
                f"the scanner process ended ({exc or type(exc).__name__})",
                device=self._name,
                operation=method,
            ) from exc
        if reply is None:
            self.shutdown()
            raise ScannerTimeout(
                f"no answer within {self.timeout_s:g} s", device=self._name, operation=method
            )
        status, value = reply
        if status == "error":
            raise value
        return value

    # ---- ScannerDriver --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The child driver's name once started."""
        return self._name

    def open(self) -> None:
        """Open the device in the child (starting the child first if needed)."""
        self._call("open")

    def close(self) -> None:
        """Close the device in the child; the child itself keeps running."""
        if self._conn is not None:
            self._call("close")

    def identity(self) -> Identity:
        """The child driver's identity."""
        return self._call("identity")

    def capabilities(self) -> Capabilities:
        """The child driver's capabilities."""
        return self._call("capabilities")

    def finger_present(self) -> bool:
        """Whether the child's device sees a finger."""
        return bool(self._call("finger_present"))

    def preview(self, mode: CaptureMode) -> Frame:
        """One preview frame from the child."""
        return self._call("preview", mode)

    def capture(self, mode: CaptureMode) -> Frame:
        """One captured frame from the child."""
        return self._call("capture", mode)

    def indicate(self, indicator: Indicator) -> None:
        """Drive the child device's LED or beeper."""
        self._call("indicate", indicator)

    def guide(self, position: int) -> None:
        """Light the child device's finger guide."""
        self._call("guide", position)

    def reset(self) -> None:
        """Reset the device in the child."""
        self._call("reset")

    def replug(self) -> None:
        """Plug the emulated cable back in (the emulator's fault knob)."""
        self._call("replug")


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
