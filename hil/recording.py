"""Record a real scanner's traffic, and replay it to the real driver in tests.

A technician records a session on the hardware (``hil/record.py``); the file goes to
``tests/fixtures/sessions/`` and the driver is then tested against what the device really said,
without the device, through the same seams the emulators use:

* serial: pyserial's own ``spy://`` handler logs every byte each way (its hex dump, read back
  by :func:`parse_spy_log`); :class:`ReplayDevice` answers behind a pseudo-terminal.
* USB: :class:`RecordingBackend` sits between pyusb and libusb and logs every transfer;
  :class:`ReplayBackend` presents the emulated reader's descriptors and answers each transfer
  with the recorded one.

A session file is JSON lines: a header ``{"session": "serial"|"usb", "spec": ..., "device":
{...}}`` then one event per line. Replay is strict: the driver must send exactly what it sent
when the session was recorded, or :attr:`mismatch` says where it did not (a changed driver is
then re-recorded on the hardware, never edited by hand). Only timeouts while waiting for a
finger are elastic, since how many fit in a wait depends on the clock.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import threading
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import usb.backend
import usb.core

# ---- session files --------------------------------------------------------------------------


def write_session(path: Path, header: dict[str, Any], events: Iterable[dict[str, Any]]) -> None:
    """Save a session as JSON lines (header first)."""
    with path.open("w") as fh:
        fh.write(json.dumps(header) + "\n")
        for event in events:
            fh.write(json.dumps(event) + "\n")


def read_session(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the events of a saved session."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[0], lines[1:]


# ---- serial -----------------------------------------------------------------------------------

_SPY_ROW = re.compile(r"^\s*[\d.]+\s+(TX|RX)\s+([0-9A-F]{4})  (.*)$")


def parse_spy_log(text: str) -> list[dict[str, str]]:
    """pyserial ``spy://`` hex dump -> ``[{"dir": "tx"|"rx", "data": hex}, ...]``.

    Consecutive chunks in the same direction are joined: what matters for replay is what the
    host sent before each answer, not how the reads were cut.
    """
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = _SPY_ROW.match(line)
        if not match:
            continue  # control lines (flushes, modem lines) and empty reads
        direction, row = match.group(1).lower(), match.group(3)
        data = bytes.fromhex(row[:49].replace(" ", ""))
        if events and events[-1]["dir"] == direction:
            events[-1]["data"] += data
        else:
            events.append({"dir": direction, "data": bytearray(data)})
    return [{"dir": e["dir"], "data": bytes(e["data"]).hex()} for e in events]


@dataclass
class ReplayDevice:
    """A recorded serial device behind a pseudo-terminal: answers as it answered then."""

    events: list[dict[str, str]]
    mismatch: str = ""
    path: str = ""
    _master: int = -1
    _slave: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        """Open the pseudo-terminal and answer in a thread; returns the port for the driver."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        threading.Thread(target=self._run, name="serial-replay", daemon=True).start()
        return self.path

    def stop(self) -> None:
        self._stop.set()

    @property
    def finished(self) -> bool:
        """True once every recorded exchange has been replayed."""
        return not self.events

    def _run(self) -> None:
        heard = bytearray()
        try:
            self._answer()
            while not self._stop.is_set() and not self.mismatch:
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    continue
                try:
                    heard += os.read(self._master, 65536)
                except OSError:
                    return
                while self.events and self.events[0]["dir"] == "tx" and heard:
                    expected = bytes.fromhex(self.events[0]["data"])
                    if len(heard) < len(expected):
                        if not expected.startswith(bytes(heard)):
                            self.mismatch = f"host sent {heard.hex()}, recorded {expected.hex()}"
                        break
                    if not heard.startswith(expected):
                        self.mismatch = (f"host sent {heard[:len(expected)].hex()}, recorded "
                                         f"{expected.hex()}")
                        break
                    del heard[: len(expected)]
                    self.events.pop(0)
                    self._answer()
                if heard and not self.events:
                    self.mismatch = f"host sent {heard.hex()} after the recording ended"
        finally:
            os.close(self._master)
            os.close(self._slave)

    def _answer(self) -> None:
        while self.events and self.events[0]["dir"] == "rx":
            os.write(self._master, bytes.fromhex(self.events.pop(0)["data"]))


# ---- USB ----------------------------------------------------------------------------------------

_PASSED_THROUGH = (
    "enumerate_devices", "get_parent", "get_device_descriptor", "get_configuration_descriptor",
    "get_interface_descriptor", "get_endpoint_descriptor", "open_device", "close_device",
    "set_configuration", "get_configuration", "set_interface_altsetting", "claim_interface",
    "release_interface", "is_kernel_driver_active", "detach_kernel_driver",
    "attach_kernel_driver", "reset_device", "clear_halt",
)


def _error_event(exc: usb.core.USBError) -> dict[str, Any]:
    return {"error": exc.strerror or str(exc), "errno": exc.errno,
            "code": exc.backend_error_code,
            "timeout": isinstance(exc, usb.core.USBTimeoutError)}


def _raise_recorded(event: dict[str, Any]) -> None:
    kind = usb.core.USBTimeoutError if event.get("timeout") else usb.core.USBError
    raise kind(event["error"], event.get("code"), event.get("errno"))


class RecordingBackend(usb.backend.IBackend):
    """A pyusb backend that passes everything to ``inner`` and logs every transfer."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.events: list[dict[str, Any]] = []

    def _log(self, event: dict[str, Any], call: Callable[[], int], buff: Any = None) -> int:
        try:
            count = call()
        except usb.core.USBError as exc:
            event.update(_error_event(exc))
            self.events.append(event)
            raise
        if buff is not None:
            event["data"] = bytes(buff[:count]).hex()
        event["result"] = count
        self.events.append(event)
        return count

    def ctrl_transfer(self, dev_handle: Any, bmRequestType: int, bRequest: int,  # noqa: N803
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:  # noqa: N803
        """Control transfer; IN data recorded as received, OUT data as sent."""
        event: dict[str, Any] = {"op": "ctrl", "request": [bmRequestType, bRequest, wValue,
                                                            wIndex, len(data)]}
        inbound = bool(bmRequestType & 0x80)
        if not inbound:
            event["data"] = bytes(data).hex()
        return self._log(event, lambda: self.inner.ctrl_transfer(
            dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout),
            data if inbound else None)

    def bulk_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        """Bulk IN."""
        return self._log({"op": "bulk_read", "ep": ep, "size": len(buff)},
                         lambda: self.inner.bulk_read(dev_handle, ep, intf, buff, timeout), buff)

    def intr_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        """Interrupt IN."""
        return self._log({"op": "intr_read", "ep": ep, "size": len(buff)},
                         lambda: self.inner.intr_read(dev_handle, ep, intf, buff, timeout), buff)

    def bulk_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> int:
        """Bulk OUT."""
        return self._log({"op": "bulk_write", "ep": ep, "data": bytes(data).hex()},
                         lambda: self.inner.bulk_write(dev_handle, ep, intf, data, timeout))

    def intr_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> int:
        """Interrupt OUT."""
        return self._log({"op": "intr_write", "ep": ep, "data": bytes(data).hex()},
                         lambda: self.inner.intr_write(dev_handle, ep, intf, data, timeout))


def _pass_through(name: str) -> Callable[..., Any]:
    def call(self: RecordingBackend, *args: Any) -> Any:
        return getattr(self.inner, name)(*args)

    call.__name__ = name
    call.__doc__ = f"``{name}`` of the wrapped backend."
    return call


for _name in _PASSED_THROUGH:
    setattr(RecordingBackend, _name, _pass_through(_name))


def replay_backend(events: list[dict[str, Any]], product_id: int) -> Any:
    """A pyusb backend that presents the reader ``product_id`` and answers from ``events``."""
    from drivers.uareu.device import UareUEmulatorConfig
    from drivers.uareu.emulator import UareUBackend

    class ReplayBackend(UareUBackend):
        """The emulated reader's descriptors; every transfer answered from the recording."""

        def __init__(self) -> None:
            super().__init__(UareUEmulatorConfig(product_id=product_id))
            self.events = list(events)
            self.mismatch = ""

        def _next(self, op: str, **expected: Any) -> dict[str, Any]:
            # a wait for the finger may time out more or less often than when it was recorded
            while self.events and self.events[0].get("timeout") and self.events[0]["op"] != op:
                self.events.pop(0)
            if not self.events:
                self.mismatch = f"{op} {expected} after the recording ended"
                raise usb.core.USBError("replay: recording ended", None, errno.EIO)
            event = self.events[0]
            if event["op"] != op and op == "intr_read":
                # polled once more for a finger than when recorded: nothing came
                raise usb.core.USBTimeoutError("replay: no event here", None, errno.ETIMEDOUT)
            if event["op"] != op or {k: event.get(k) for k in expected} != expected:
                self.mismatch = f"driver did {op} {expected}, recorded {event}"
                raise usb.core.USBError("replay: the driver diverged", None, errno.EIO)
            return self.events.pop(0)

        def _answer(self, event: dict[str, Any], buff: Any = None) -> int:
            if "error" in event:
                _raise_recorded(event)
            if buff is not None and "data" in event:
                data = bytes.fromhex(event["data"])
                buff[: len(data)] = type(buff)(buff.typecode, data)
            return int(event["result"])

        def ctrl_transfer(self, dev_handle: Any, bmRequestType: int, bRequest: int,  # noqa: N803
                          wValue: int, wIndex: int, data: Any, timeout: int) -> int:  # noqa: N803
            request = [bmRequestType, bRequest, wValue, wIndex, len(data)]
            event = self._next("ctrl", request=request)
            if not bmRequestType & 0x80 and event.get("data") != bytes(data).hex():
                self.mismatch = f"driver wrote {bytes(data).hex()} with {request}, recorded {event}"
                raise usb.core.USBError("replay: the driver diverged", None, errno.EIO)
            return self._answer(event, data if bmRequestType & 0x80 else None)

        def bulk_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
            return self._answer(self._next("bulk_read", ep=ep), buff)

        def intr_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
            return self._answer(self._next("intr_read", ep=ep), buff)

    return ReplayBackend()
