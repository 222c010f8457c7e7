"""The ``r30x`` scanner driver: UART optical modules (Grow R305/R307/R503, ZFM-20, AS608).

These are small single-finger modules with their own matcher; the booking station only uses
them as image sensors: ``GenImg`` exposes the sensor, ``UpImage`` sends the 256 x 288 4-bit
image at about 500 ppi as data packets. The driver reports that native image (no upscaling) and
declares only flat single-finger captures. A preview frame costs a full upload, so the declared
preview rate is computed from the bytes on the wire at the configured baud rate: about 0.13
frames per second at 57600 baud (a 7 s upload after a 0.5 s exposure).

The port is opened with :func:`serial.serial_for_url`, so a tty, a ``/dev/serial/by-id`` link
and the emulator URL ``r30xemu://`` all work. Every operation has a deadline; failures are the
typed errors of :mod:`drivers.errors`, naming the device and the operation. An image is handed
on only when every packet up to the end-of-data packet arrived with a good checksum and the
byte count is exact.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import Literal

import serial
from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.base import Capabilities, CaptureMode, Frame, Identity, Indicator, ScannerDriver
from drivers.errors import (
    DeviceRefused,
    NoFinger,
    ProtocolError,
    ScannerDisconnected,
    ScannerError,
    ScannerTimeout,
    UnsupportedMode,
)
from drivers.r30x.codec import Packet, PacketDecoder, command, unpack_image, upload_wire_bytes
from drivers.r30x.protocol import (
    BAUD_UNIT,
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    DEFAULT_PASSWORD,
    IMAGE_BYTES,
    IMAGE_HEIGHT,
    IMAGE_PPI,
    IMAGE_WIDTH,
    AuraColour,
    AuraControl,
    ConfirmationCode,
    Instruction,
    PacketId,
    SystemParameters,
)

log = logging.getLogger(__name__)

try:
    from termios import error as _TermiosError
except ImportError:  # not a POSIX system: pyserial raises SerialException or OSError only
    _TermiosError = OSError  # noqa: N816
#: What a port raises when the device behind it is gone (termios.error is not an OSError).
_PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)

_READ_SLICE_S = 0.05  # pyserial read timeout; deadlines are enforced above it


class R30xConfig(BaseModel):
    """Config of the ``r30x`` scanner type."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["r30x"] = Field("r30x", description="Selects this driver.")
    port: str = Field(
        "/dev/ttyUSB0",
        description=(
            "Serial device (/dev/ttyUSB0, a /dev/serial/by-id/ link) or a pyserial URL "
            "(r30xemu://?finger_seed=2 for the built-in emulator)."
        ),
    )
    baudrate: int = Field(
        DEFAULT_BAUDRATE, description="Line speed the module is set to: 9600 x N, N = 1..12."
    )
    address: int = Field(
        DEFAULT_ADDRESS, ge=0, le=0xFFFFFFFF, description="Module address (factory 0xFFFFFFFF)."
    )
    password: int = Field(
        DEFAULT_PASSWORD, ge=0, le=0xFFFFFFFF, description="Handshake password (factory 0)."
    )
    timeout_s: float = Field(
        2.0, gt=0, le=30, description="Longest wait for the module's answer to one command."
    )
    packet_timeout_s: float = Field(
        0.5, gt=0, le=10, description="Longest silence inside an image upload before giving up."
    )
    led: Literal["aura", "switch", "none"] = Field(
        "aura",
        description=(
            "Light control: 'aura' (R503 ring, AuraLedConfig), 'switch' (OpenLED/CloseLED), or "
            "'none'."
        ),
    )
    acquire_s: float = Field(
        0.5,
        ge=0,
        le=5,
        description="Time GenImg takes (datasheets: under 1 s); only used for the preview rate.",
    )

    @field_validator("baudrate")
    @classmethod
    def _nine_six_hundred_times_n(cls, value: int) -> int:
        if value % BAUD_UNIT or not 1 <= value // BAUD_UNIT <= 12:
            raise ValueError("must be 9600 x N with N in 1..12 (57600 is the factory setting)")
        return value


_INDICATOR_AURA = {
    Indicator.LED_OFF: (AuraControl.ALWAYS_OFF, 0, AuraColour.BLUE, 0),
    Indicator.LED_READY: (AuraControl.BREATHING, 0x80, AuraColour.BLUE, 0),
    Indicator.LED_OK: (AuraControl.ALWAYS_ON, 0, AuraColour.PURPLE, 0),
    Indicator.LED_ERROR: (AuraControl.FLASHING, 0x30, AuraColour.RED, 3),
}


class R30xDriver(ScannerDriver):
    """Drives one R30x-family module over a serial line."""

    type_name = "r30x"
    Config = R30xConfig

    def __init__(self, config: R30xConfig | None = None) -> None:
        self.config = config or R30xConfig()
        self._port: serial.SerialBase | None = None
        self._decoder = PacketDecoder(self.config.address)
        self._parameters: SystemParameters | None = None
        self._sequence = 0
        self._pending: list[Packet] = []
        self._wire_bytes = 0
        self.timeouts = 0
        self.stale_packets = 0

    # ---- identity ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``serial:<port>`` (URL query left out: it may hold settings, never needed here)."""
        return "serial:" + self.config.port.split("?", 1)[0]

    def identity(self) -> Identity:
        """What the module tells about itself (it has no vendor or serial number register)."""
        params = self._require_parameters("identity")
        return Identity(
            vendor="Hangzhou Grow / Synochip compatible",
            model=(
                f"R30x-family module (system id 0x{params.system_identifier:04x}, "
                f"library {params.library_size})"
            ),
            serial=f"address 0x{params.address:08x}",
        )

    def capabilities(self) -> Capabilities:
        """Native 256 x 288 at ~500 ppi, flat single finger, preview rate from the line rate."""
        packet_size = self._parameters.packet_size if self._parameters else 128
        upload_s = upload_wire_bytes(packet_size) * 10 / self.config.baudrate
        indicators = {
            "aura": frozenset(_INDICATOR_AURA),
            "switch": frozenset({Indicator.LED_OFF, Indicator.LED_READY}),
            "none": frozenset(),
        }[self.config.led]
        return Capabilities(
            platen_mm=(IMAGE_WIDTH * 25.4 / IMAGE_PPI, IMAGE_HEIGHT * 25.4 / IMAGE_PPI),
            ppi=IMAGE_PPI,
            image_size=(IMAGE_WIDTH, IMAGE_HEIGHT),
            modes=frozenset({CaptureMode.FLAT_SINGLE}),
            preview_fps=round(1.0 / (upload_s + self.config.acquire_s), 3),
            indicators=indicators,
        )

    @property
    def line_counters(self) -> dict[str, int]:
        """Error counters for the admin page: bad checksums, skipped bytes, timeouts."""
        return {
            "checksum_errors": self._decoder.checksum_errors,
            "discarded_bytes": self._decoder.discarded_bytes,
            "packets": self._decoder.packets,
            "timeouts": self.timeouts,
            "stale_packets": self.stale_packets,
        }

    # ---- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Open the port, pass the password handshake and read the system parameters."""
        if self._port is not None:
            return
        try:
            self._port = serial.serial_for_url(
                self.config.port,
                baudrate=self.config.baudrate,
                timeout=_READ_SLICE_S,
                write_timeout=self.config.timeout_s,
            )
        except ValueError as exc:
            raise ScannerError(f"bad port setting: {exc}", device=self.name,
                               operation="open") from exc
        except _PORT_ERRORS as exc:
            raise ScannerDisconnected(f"cannot open port: {exc}", device=self.name,
                                      operation="open") from exc
        try:
            self._verify_password()
            answer = self._transact(Instruction.ReadSysPara, b"", "read system parameters")
            self._parameters = self._decode_parameters(answer)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the port; safe to call twice."""
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except _PORT_ERRORS as exc:
                log.debug("closing %s: %s", self.name, exc)

    def reset(self) -> None:
        """Close and reopen the port: the module is stateless between commands."""
        self.close()
        self.open()

    # ---- imaging ----------------------------------------------------------------------

    def finger_present(self) -> bool:
        """Expose the sensor: the module says whether a finger is there."""
        answer = self._transact(Instruction.GenImg, b"", "finger check", refuse=False)
        code = answer[0]
        if code == ConfirmationCode.NO_FINGER:
            return False
        if code in (ConfirmationCode.OK, ConfirmationCode.ENROLL_FAIL):
            return True  # 0x03: something is on the glass but the exposure failed
        raise self._refusal(code, "finger check")

    def capture(self, mode: CaptureMode) -> Frame:
        """Expose and upload one image; raises :class:`NoFinger` when the glass is empty."""
        return self._image(mode, "capture")

    def preview(self, mode: CaptureMode) -> Frame:
        """A preview costs a full capture on these modules."""
        frame = self._image(mode, "preview")
        frame.meta["preview"] = True
        return frame

    def indicate(self, indicator: Indicator) -> None:
        """Drive the ring light (``aura``) or the plain LED (``switch``); ignore the rest."""
        if self.config.led == "aura" and indicator in _INDICATOR_AURA:
            self._transact(Instruction.AuraLedConfig, bytes(_INDICATOR_AURA[indicator]),
                           f"indicate {indicator.value}")
        elif self.config.led == "switch" and indicator in (Indicator.LED_OFF, Indicator.LED_READY):
            instruction = Instruction.CloseLED if indicator == Indicator.LED_OFF else (
                Instruction.OpenLED
            )
            self._transact(instruction, b"", f"indicate {indicator.value}")

    def _image(self, mode: CaptureMode, operation: str) -> Frame:
        if mode != CaptureMode.FLAT_SINGLE:
            raise UnsupportedMode(f"{mode.value} is not available: flat single finger only",
                                  device=self.name, operation=operation)
        started = time.monotonic()
        self._transact(Instruction.GenImg, b"", operation)
        upload_started = time.monotonic()
        data, wire_bytes = self._upload(operation)
        upload_s = time.monotonic() - upload_started
        image = unpack_image(data)
        self._sequence += 1
        return Frame(
            image=image,
            ppi=IMAGE_PPI,
            sequence=self._sequence,
            meta={
                "capture_s": round(time.monotonic() - started, 4),
                "upload_s": round(upload_s, 4),
                "upload_wire_bytes": wire_bytes,
                "baudrate": self.config.baudrate,
            },
        )

    def _upload(self, operation: str) -> tuple[bytes, int]:
        """``UpImage``: every data packet up to the end packet, exact size, or an error."""
        wire_before = self._wire_bytes
        self._transact(Instruction.UpImage, b"", operation)
        packet_size = self._require_parameters(operation).packet_size
        expected_wire = upload_wire_bytes(packet_size)
        deadline = time.monotonic() + self.config.timeout_s + 3 * expected_wire * 10 / (
            self.config.baudrate
        )
        image = bytearray()
        errors_before = self._decoder.checksum_errors
        while True:
            packet = self._next_packet(operation, deadline, silence=self.config.packet_timeout_s)
            if packet.pid not in (PacketId.DATA, PacketId.END_DATA):
                raise ProtocolError(f"unexpected packet 0x{packet.pid:02x} inside image upload",
                                    device=self.name, operation=operation)
            if len(packet.payload) > packet_size:
                raise ProtocolError(
                    f"data packet of {len(packet.payload)} bytes (packet size {packet_size})",
                    device=self.name, operation=operation)
            image += packet.payload
            if len(image) > IMAGE_BYTES:
                raise ProtocolError(f"image longer than {IMAGE_BYTES} bytes", device=self.name,
                                    operation=operation)
            if packet.pid == PacketId.END_DATA:
                break
        if len(image) != IMAGE_BYTES:
            bad = self._decoder.checksum_errors - errors_before
            raise ProtocolError(
                f"image incomplete: {len(image)} of {IMAGE_BYTES} bytes "
                f"({bad} packets failed their checksum)",
                device=self.name, operation=operation)
        return bytes(image), self._wire_bytes - wire_before

    # ---- commands ---------------------------------------------------------------------

    def _verify_password(self) -> None:
        answer = self._transact(Instruction.VfyPwd, struct.pack(">I", self.config.password),
                                "verify password", refuse=False)
        if answer[0] == ConfirmationCode.WRONG_PASSWORD:
            raise DeviceRefused("the module refused the handshake password", device=self.name,
                                operation="verify password")
        if answer[0] != ConfirmationCode.OK:
            raise self._refusal(answer[0], "verify password")

    def _decode_parameters(self, answer: bytes) -> SystemParameters:
        try:
            params = SystemParameters.decode(answer[1:])
        except ValueError as exc:
            raise ProtocolError(f"bad system parameters: {exc}", device=self.name,
                                operation="read system parameters") from exc
        if params.baudrate != self.config.baudrate:
            log.warning("%s: module reports %d baud, talking at %d", self.name, params.baudrate,
                        self.config.baudrate)
        return params

    def _require_parameters(self, operation: str) -> SystemParameters:
        if self._parameters is None or self._port is None:
            raise ScannerDisconnected("device not open", device=self.name, operation=operation)
        return self._parameters

    def _transact(
        self, instruction: Instruction, params: bytes, operation: str, *, refuse: bool = True
    ) -> bytes:
        """Send one command and return the ack payload (confirmation code first).

        With ``refuse`` a confirmation code other than OK raises the matching error.
        """
        port = self._require_port(operation)
        try:
            port.reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise ScannerDisconnected(f"port failed: {exc}", device=self.name,
                                      operation=operation) from exc
        self._decoder.clear()
        self._pending.clear()
        self._write(command(instruction, params, self.config.address), operation)
        deadline = time.monotonic() + self.config.timeout_s
        packet = self._next_packet(operation, deadline)
        while packet.pid in (PacketId.DATA, PacketId.END_DATA):
            # The tail of an upload we abandoned (the module keeps sending): not our answer.
            self.stale_packets += 1
            packet = self._next_packet(operation, deadline)
        if packet.pid != PacketId.ACK:
            raise ProtocolError(f"expected an acknowledge packet, got PID 0x{packet.pid:02x}",
                                device=self.name, operation=operation)
        code = packet.payload[0]
        if code == ConfirmationCode.PACKET_RECEIVE_ERROR:
            raise ProtocolError("the module received our command garbled", device=self.name,
                                operation=operation)
        if refuse and code != ConfirmationCode.OK:
            raise self._refusal(code, operation)
        return packet.payload

    def _refusal(self, code: int, operation: str) -> DeviceRefused:
        try:
            label = ConfirmationCode(code).name
        except ValueError:
            label = "unknown code"
        message = f"module answered {label} (0x{code:02x})"
        if code == ConfirmationCode.NO_FINGER:
            return NoFinger("no finger on the platen", device=self.name, operation=operation)
        return DeviceRefused(message, device=self.name, operation=operation)

    # ---- the line ---------------------------------------------------------------------

    def _require_port(self, operation: str) -> serial.SerialBase:
        if self._port is None:
            raise ScannerDisconnected("device not open", device=self.name, operation=operation)
        return self._port

    def _write(self, data: bytes, operation: str) -> None:
        port = self._require_port(operation)
        try:
            port.write(data)
        except serial.SerialTimeoutException as exc:
            self.timeouts += 1
            raise ScannerTimeout("write timed out", device=self.name,
                                 operation=operation) from exc
        except _PORT_ERRORS as exc:
            raise ScannerDisconnected(f"write failed: {exc}", device=self.name,
                                      operation=operation) from exc

    def _next_packet(self, operation: str, deadline: float, *, silence: float | None = None) -> (
        Packet
    ):
        """The next checked packet before ``deadline`` (and before ``silence`` s of quiet)."""
        if self._pending:
            return self._pending.pop(0)
        port = self._require_port(operation)
        quiet_since = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline or (silence is not None and now - quiet_since >= silence):
                self.timeouts += 1
                what = "stopped sending" if silence is not None else "did not answer"
                raise ScannerTimeout(f"module {what} in time", device=self.name,
                                     operation=operation)
            try:
                data = port.read(max(1, port.in_waiting))
            except _PORT_ERRORS as exc:
                raise ScannerDisconnected(f"read failed: {exc}", device=self.name,
                                          operation=operation) from exc
            if not data:
                continue
            self._wire_bytes += len(data)
            quiet_since = time.monotonic()
            packets = self._decoder.feed(data)
            if packets:
                self._pending = packets[1:]
                return packets[0]
