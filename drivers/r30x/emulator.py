"""A device-side R30x emulator: a thread that answers the 0xEF01 protocol on a real byte channel.

It sits below the driver, where the hardware would be, so the real driver code (pyserial, the
codec, the timeouts) runs in tests and in the demo:

* behind a pseudo-terminal (:meth:`R30xEmulator.on_pty`): the driver opens ``/dev/pts/N`` (or a
  stable symlink to it, like ``/dev/serial/by-id/...``) exactly as it opens a USB-UART adapter;
* behind the ``r30xemu://`` pyserial URL (:mod:`drivers.r30x.urlhandler.protocol_r30xemu`),
  which runs the same thread on one end of a socket pair.

The thread owns the line: it paces bytes at the baud rate when asked (10 bit times per byte,
8N1), ignores a host talking at the wrong baud rate, and applies the line faults of
:class:`~drivers.faults.FaultConfig` (no answer, lost or garbled image packets, noise, a pulled
cable). What the module answers is :class:`~drivers.r30x.module.R30xModule`'s business.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from drivers.faults import FaultConfig, FaultDice, FingerSourceName, Platen
from drivers.r30x.codec import HEAD_SIZE, Packet, PacketDecoder, encode_packet
from drivers.r30x.module import R30xModule
from drivers.r30x.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    DEFAULT_PASSWORD,
    Instruction,
    PacketId,
)

log = logging.getLogger(__name__)

_BAUD_CONSTANTS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (9600, 19200, 38400, 57600, 115200, 230400)
    if hasattr(termios, f"B{rate}")
}
_IDLE_POLL_S = 0.02


class R30xEmulatorConfig(BaseModel):
    """Settings of one emulated module (the ``r30xemu://`` URL takes the same keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    baudrate: int = Field(DEFAULT_BAUDRATE, description="Baud rate the module is set to.")
    pace: bool = Field(
        False, description="Send bytes at the baud rate (10 bit times each) instead of at once."
    )
    packet_size: int = Field(128, description="Data packet size: 32, 64, 128 or 256 bytes.")
    address: int = Field(DEFAULT_ADDRESS, ge=0, le=0xFFFFFFFF, description="Module address.")
    password: int = Field(
        DEFAULT_PASSWORD, ge=0, le=0xFFFFFFFF, description="Handshake password the module holds."
    )
    acquire_s: float = Field(
        0.0, ge=0, le=5, description="Time GenImg takes to expose the sensor (real modules: <1 s)."
    )
    finger_source: FingerSourceName = Field(
        "auto", description="'synthetic' (drivers.synthetic), 'pattern' (built in), or 'auto'."
    )
    finger_seed: int = Field(1, description="Which virtual finger lies on the platen.")
    faults: FaultConfig = Field(default_factory=FaultConfig, description="Fault knobs.")

    def build_module(self) -> R30xModule:
        """A fresh module in its power-on state."""
        platen = Platen(
            self.faults, finger_source=self.finger_source, finger_seed=self.finger_seed
        )
        return R30xModule(
            platen=platen,
            address=self.address,
            password=self.password,
            packet_size=self.packet_size,
            baudrate=self.baudrate,
        )


class R30xEmulator:
    """Serves one :class:`R30xModule` on a file descriptor from a daemon thread."""

    def __init__(self, config: R30xEmulatorConfig | None = None) -> None:
        self.config = config or R30xEmulatorConfig()
        self.module = self.config.build_module()
        self.dice = FaultDice(self.config.faults)
        self.decoder = PacketDecoder(self.config.address)
        self.bytes_sent = 0
        self.garbled_bytes = 0
        self.error: BaseException | None = None
        self.host_baudrate: Callable[[], int | None] = lambda: None
        self._fd: int | None = None
        self._closers: list[Callable[[], None]] = []
        self._outgoing = bytearray()
        self._line_free_at = 0.0
        self._unplug_at: int | None = self.config.faults.unplug_after_bytes
        self._mid_transfer_done = False
        self._stop = threading.Event()
        self._requests: list[tuple[str, threading.Event]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="r30x-emulator", daemon=True)
        self._pty_path = ""
        self._link: Path | None = None
        self._pulled_at: float | None = None

    # ---- transports -------------------------------------------------------------------

    @classmethod
    def on_pty(
        cls, config: R30xEmulatorConfig | None = None, *, link: Path | None = None
    ) -> R30xEmulator:
        """An emulator behind a new pseudo-terminal; ``link`` is kept pointing at it."""
        emulator = cls(config)
        emulator._link = link
        emulator._attach_pty()
        return emulator

    @classmethod
    def on_socket(cls, sock: socket.socket, config: R30xEmulatorConfig | None = None) -> (
        R30xEmulator
    ):
        """An emulator on one end of a connected stream socket (the URL handler's transport)."""
        emulator = cls(config)
        sock.setblocking(False)
        emulator._fd = sock.fileno()
        emulator._closers = [sock.close]
        return emulator

    @property
    def port(self) -> str:
        """What the driver opens: the symlink when there is one, else ``/dev/pts/N``."""
        return str(self._link) if self._link is not None else self._pty_path

    @property
    def platen(self) -> Platen:
        """The emulated glass (tests lift and place the finger here)."""
        return self.module.platen

    @property
    def plugged_in(self) -> bool:
        """False after an unplug (fault or :meth:`unplug`) until :meth:`replug`."""
        return self._fd is not None

    def _attach_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._pty_path = os.ttyname(slave)
        self._fd = master
        self._closers = [lambda: os.close(master), lambda: os.close(slave)]

        def host_baudrate() -> int | None:
            try:
                return _BAUD_CONSTANTS.get(termios.tcgetattr(slave)[5])
            except (termios.error, OSError):
                return None

        self.host_baudrate = host_baudrate
        if self._link is not None:
            temporary = self._link.with_name(self._link.name + ".new")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(self._pty_path)
            os.replace(temporary, self._link)

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> R30xEmulator:
        """Start answering; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and release the channel."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pull_plug()
        if self._link is not None:
            self._link.unlink(missing_ok=True)

    def __enter__(self) -> R30xEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        """Pull the cable now (the driver's next read or write fails)."""
        self._request("unplug")

    def replug(self) -> None:
        """Plug a pty emulator back in: a new ``/dev/pts/N``; the symlink follows it."""
        if not self._pty_path:
            raise RuntimeError("only a pty emulator can be plugged back in")
        self._request("replug")

    def _request(self, what: str) -> None:
        done = threading.Event()
        with self._lock:
            self._requests.append((what, done))
        if not done.wait(timeout=5):
            raise TimeoutError(f"emulator did not {what} within 5 s")

    # ---- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._serve_requests()
                fd = self._fd
                if fd is None:
                    self._replug_when_due()
                    self._stop.wait(_IDLE_POLL_S)
                    continue
                now = time.monotonic()
                wait = _IDLE_POLL_S
                sendable = bool(self._outgoing)
                if sendable and self.config.pace:
                    # A paced chunk reaches the host when its last bit has been on the line.
                    due = self._slot_start(now) + self._chunk_size() * 10 / self.config.baudrate
                    wait = min(wait, max(0.0, due - now))
                    sendable = now >= due
                readable, writable, _ = select.select(
                    [fd], [fd] if sendable else [], [], wait
                )
                if readable and not self._receive(fd):
                    continue
                if writable and self._fd is not None:
                    self._send(self._fd)
        except Exception as exc:  # thread boundary: keep the traceback, let tests see it
            self.error = exc
            log.exception("R30x emulator thread failed")

    def _serve_requests(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        for what, done in requests:
            self._pull_plug()
            if what == "replug":
                self._plug_in()
            done.set()

    def _replug_when_due(self) -> None:
        back_after = self.config.faults.replug_after_s
        if (back_after is not None and self._pty_path and self._pulled_at is not None
                and time.monotonic() - self._pulled_at >= back_after):
            self._plug_in()

    def _plug_in(self) -> None:
        self.module = self.config.build_module()
        self.decoder = PacketDecoder(self.config.address)
        self._unplug_at = None
        self._pulled_at = None
        self._attach_pty()

    def _pull_plug(self) -> None:
        closers, self._closers = self._closers, []
        if self._fd is not None:
            self._pulled_at = time.monotonic()
        self._fd = None
        self._outgoing.clear()
        for close in closers:
            try:
                close()
            except OSError:
                pass

    def _receive(self, fd: int) -> bool:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            # The host closed its end of a socket: nobody is left to talk to.
            if not self._pty_path:
                self._pull_plug()
            return False
        host = self.host_baudrate()
        if host is not None and host != self.config.baudrate:
            self.garbled_bytes += len(data)  # wrong baud rate: the UART sees framing errors
            return True
        before = self.decoder.checksum_errors
        packets = self.decoder.feed(data)
        for _ in range(self.decoder.checksum_errors - before):
            self._queue(self.module.receive_error())
        for packet in packets:
            self._answer(packet)
        return True

    def _answer(self, packet: Packet) -> None:
        faults = self.config.faults
        armed = self.dice.armed
        if self.dice.roll(faults.timeout_probability):
            self.dice.count_exchange()
            return
        replies = self.module.answer(packet)
        instruction = packet.payload[0] if packet.pid == PacketId.COMMAND else None
        if instruction == Instruction.GenImg and self.config.acquire_s:
            self._line_free_at = max(self._line_free_at, time.monotonic() + self.config.acquire_s)
        queued_before = len(self._outgoing)
        self._queue(replies)
        if (
            instruction == Instruction.UpImage
            and faults.unplug_mid_transfer
            and armed
            and not self._mid_transfer_done
            and len(replies) > 1
        ):
            self._mid_transfer_done = True
            added = len(self._outgoing) - queued_before
            self._unplug_at = self.bytes_sent + queued_before + added // 2
        self.dice.count_exchange()

    def _queue(self, replies: list[tuple[PacketId, bytes]]) -> None:
        faults = self.config.faults
        if not self._outgoing:  # an idle line starts sending now, not in the past
            self._line_free_at = max(self._line_free_at, time.monotonic())
        for pid, payload in replies:
            wire = encode_packet(pid, payload, self.config.address)
            if pid == PacketId.DATA and self.dice.roll(faults.drop_probability):
                continue
            if pid in (PacketId.DATA, PacketId.END_DATA) and self.dice.roll(
                faults.corrupt_probability
            ):
                wire = self.dice.flip_bits(wire, start=HEAD_SIZE)
            self._outgoing += self.dice.noise() + wire

    def _chunk_size(self) -> int:
        chunk = len(self._outgoing)
        if self.config.pace:
            chunk = min(chunk, max(1, self.config.baudrate // 1000))  # about 10 ms of line time
        if self._unplug_at is not None:
            chunk = min(chunk, self._unplug_at - self.bytes_sent)
        return chunk

    def _slot_start(self, now: float) -> float:
        # A UART sends back to back: a thread that woke a little late catches up instead of
        # stretching the line; only after the line has been idle does the schedule restart.
        return self._line_free_at if now - self._line_free_at < 0.05 else now

    def _send(self, fd: int) -> None:
        chunk = self._chunk_size()
        if chunk <= 0:
            self._pull_plug()
            return
        try:
            sent = os.write(fd, bytes(self._outgoing[:chunk]))
        except BlockingIOError:
            return
        except OSError:
            self._pull_plug()
            return
        del self._outgoing[:sent]
        self.bytes_sent += sent
        start = self._slot_start(time.monotonic())
        self._line_free_at = start + sent * 10 / self.config.baudrate
        if self._unplug_at is not None and self.bytes_sent >= self._unplug_at:
            self._pull_plug()
