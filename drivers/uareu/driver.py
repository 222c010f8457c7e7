"""The ``uareu`` scanner driver: DigitalPersona U.are.U 4000, 4000B and 4500 on pyusb.

What is covered, from the protocol facts libfprint's ``uru4000`` driver documents:

* products 05ba:0007 (4000), 05ba:0008 (4000 in a keyboard) and 05ba:000a (4000B, 4500);
* the interface check (vendor class, interrupt 0x81, bulk 0x82), the power-up sequence through
  the HWSTAT register (including the "reboot power" dance for a device left confused, and three
  tries waiting for the scan-power interrupt), and the version registers;
* finger-on and finger-off events from the interrupt endpoint after setting the await modes;
* one frame per capture from the bulk endpoint, its header checked, its blocks descrambled with
  keys fetched through the scramble registers (4000B/4500 always; a 4000 when its lines look
  scrambled: libfprint's test, tightened so a finger at the top edge does not fool it),
  assembled, inverted, and turned upright on the 4000.

What is not covered: firmware upload or patching, the Microsoft readers that share the protocol
(their second generation needs an AES challenge-response; DigitalPersona's own products need
none in libfprint), 05ba:000b and later U.are.U 5xxx readers (a different protocol), and any
LED control (the ring light follows the device's mode by itself). The preview rate is a declared
figure from config, not measured; ``hil/`` measures it on hardware.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import usb.backend
import usb.core
import usb.util
from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.base import Capabilities, CaptureMode, Frame, Identity, ScannerDriver
from drivers.errors import (
    NoFinger,
    ProtocolError,
    ScannerDisconnected,
    ScannerError,
    ScannerTimeout,
    UnsupportedMode,
)
from drivers.uareu.device import UareUEmulatorConfig
from drivers.uareu.emulator import UareUBackend
from drivers.uareu.image import FrameError, assemble, descramble, looks_scrambled, parse_frame
from drivers.uareu.protocol import (
    CTRL_IN,
    CTRL_OUT,
    EP_BULK,
    EP_INTERRUPT,
    FRAME_BYTES,
    HWSTAT_ERROR,
    HWSTAT_LOW_POWER,
    IMAGE_HEIGHT,
    IMAGE_PPI,
    IMAGE_WIDTH,
    INTERFACE_CLASS,
    IRQ_LENGTH,
    PLATEN_MM,
    PROFILES,
    USB_REQUEST,
    VENDOR_ID,
    Interrupt,
    Mode,
    Profile,
    Register,
)

log = logging.getLogger(__name__)

_DISCONNECTED_ERRNOS = {errno.ENODEV, errno.ENOENT, errno.ESHUTDOWN, errno.EIO}
_POWER_TRIES = 3  # libfprint retries the whole power-up three times
_HWSTAT_POLLS = 100  # and polls HWSTAT up to 100 times, 10 ms apart
_HWSTAT_POLL_S = 0.01


class UareUConfig(BaseModel):
    """Config of the ``uareu`` scanner type."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["uareu"] = Field("uareu", description="Selects this driver.")
    product_id: int | None = Field(
        None, description="0x0007, 0x0008 or 0x000A; unset takes the first supported reader."
    )
    serial_number: str | None = Field(
        None, description="Pick the reader with this USB serial number when several are plugged."
    )
    usb_backend: Literal["libusb1", "libusb0", "openusb", "emulator"] = Field(
        "libusb1", description="pyusb backend; 'emulator' uses the built-in emulated reader."
    )
    emulator: UareUEmulatorConfig = Field(
        default_factory=UareUEmulatorConfig,
        description="The emulated reader (only with usb_backend = 'emulator').",
    )
    control_timeout_s: float = Field(
        1.0, gt=0, le=10, description="Time limit of one register read or write."
    )
    capture_timeout_s: float = Field(
        5.0, gt=0, le=30, description="Time limit of one frame transfer."
    )
    finger_wait_s: float = Field(
        0.2, gt=0, le=10, description="How long a capture waits for the finger-on event."
    )
    power_up_timeout_s: float = Field(
        1.0, gt=0, le=10, description="How long each power-up waits for the scan-power event."
    )
    preview_fps: float = Field(
        5.0, gt=0, le=30, description="Declared preview rate (not measured; see hil/)."
    )

    @field_validator("product_id")
    @classmethod
    def _supported(cls, value: int | None) -> int | None:
        if value is not None and value not in PROFILES:
            raise ValueError(f"supported products: {', '.join(f'0x{p:04x}' for p in PROFILES)}")
        return value


class UareUDriver(ScannerDriver):
    """Drives one U.are.U 4000/4000B/4500 through pyusb."""

    type_name = "uareu"
    Config = UareUConfig

    def __init__(self, config: UareUConfig | None = None, *, backend: Any = None) -> None:
        """``backend``: a pyusb backend object to use instead of the configured one."""
        self.config = config or UareUConfig()
        self._backend = backend
        self._device: usb.core.Device | None = None
        self._interface = 0
        self._profile: Profile | None = None
        self._identity: Identity | None = None
        self._finger_on = False
        self._sequence = 0

    # ---- identity ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``usb:05ba:<product>`` (``any`` when not configured), plus the serial if given."""
        product = f"{self.config.product_id:04x}" if self.config.product_id else "any"
        serial = f"#{self.config.serial_number}" if self.config.serial_number else ""
        return f"usb:{VENDOR_ID:04x}:{product}{serial}"

    def identity(self) -> Identity:
        """Manufacturer, product and serial strings, and the two version registers."""
        if self._identity is None:
            raise ScannerDisconnected("device not open", device=self.name, operation="identity")
        return self._identity

    def capabilities(self) -> Capabilities:
        """384 x 290 at 512 ppi, flat single finger."""
        return Capabilities(
            platen_mm=PLATEN_MM,
            ppi=IMAGE_PPI,
            image_size=(IMAGE_WIDTH, IMAGE_HEIGHT),
            modes=frozenset({CaptureMode.FLAT_SINGLE}),
            preview_fps=self.config.preview_fps,
        )

    # ---- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Find the reader, claim its interface and power the sensor up."""
        if self._device is not None:
            return
        with self._usb("open"):
            device = self._find()
            self._device = device
            try:
                self._claim(device)
                self._power_up()
                info = self._read_registers(Register.DEVICE_INFO, 16, "read device info")
                self._identity = self._read_identity(device, info)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        """Switch the sensor off and release the device; safe to call twice."""
        device, self._device = self._device, None
        self._identity = None
        if device is None:
            return
        try:
            device.ctrl_transfer(CTRL_OUT, USB_REQUEST, Register.MODE, 0, bytes([Mode.OFF]),
                                 self._ms(self.config.control_timeout_s))
            usb.util.release_interface(device, self._interface)
        except (usb.core.USBError, ValueError, NotImplementedError) as exc:
            log.debug("closing %s: %s", self.name, exc)
        finally:
            usb.util.dispose_resources(device)

    def _find(self) -> usb.core.Device:
        backend = self._backend or self._make_backend()
        wanted = self.config.product_id

        def supported(dev: usb.core.Device) -> bool:
            return dev.idProduct in PROFILES and (wanted is None or dev.idProduct == wanted)

        found = list(usb.core.find(find_all=True, idVendor=VENDOR_ID, backend=backend,
                                   custom_match=supported))
        if self.config.serial_number:
            found = [d for d in found if _string(d, d.iSerialNumber) == self.config.serial_number]
        if not found:
            raise ScannerDisconnected("no U.are.U 4000/4000B/4500 on the bus", device=self.name,
                                      operation="open")
        return found[0]

    def _make_backend(self) -> Any:
        if self.config.usb_backend == "emulator":
            self._backend = UareUBackend(self.config.emulator)
            return self._backend
        module = {
            "libusb1": "usb.backend.libusb1",
            "libusb0": "usb.backend.libusb0",
            "openusb": "usb.backend.openusb",
        }[self.config.usb_backend]
        import importlib

        backend = importlib.import_module(module).get_backend()
        if backend is None:
            raise ScannerError(f"the {self.config.usb_backend} library is not installed",
                               device=self.name, operation="open")
        return backend

    def _claim(self, device: usb.core.Device) -> None:
        try:
            configuration = device.get_active_configuration()
        except usb.core.USBError:
            device.set_configuration()
            configuration = device.get_active_configuration()
        interface = usb.util.find_descriptor(
            configuration,
            bInterfaceClass=INTERFACE_CLASS,
            bInterfaceSubClass=INTERFACE_CLASS,
            bInterfaceProtocol=INTERFACE_CLASS,
        )
        if interface is None:
            raise ProtocolError("no vendor-specific interface", device=self.name,
                                operation="open")
        endpoints = [(ep.bEndpointAddress, usb.util.endpoint_type(ep.bmAttributes))
                     for ep in interface]
        if endpoints != [(EP_INTERRUPT, usb.util.ENDPOINT_TYPE_INTR),
                         (EP_BULK, usb.util.ENDPOINT_TYPE_BULK)]:
            raise ProtocolError(f"unexpected endpoints {endpoints}", device=self.name,
                                operation="open")
        self._interface = interface.bInterfaceNumber
        with contextlib.suppress(NotImplementedError, usb.core.USBError):
            if device.is_kernel_driver_active(self._interface):
                device.detach_kernel_driver(self._interface)
        usb.util.claim_interface(device, self._interface)
        self._profile = PROFILES[device.idProduct]

    def _power_up(self) -> None:
        """Power-up as libfprint does it: fix a confused HWSTAT, power down, up, await 0x56aa."""
        for _ in range(_POWER_TRIES):
            hwstat = self._read_registers(Register.HWSTAT, 1, "power up")[0]
            if hwstat & (HWSTAT_LOW_POWER | HWSTAT_ERROR) == HWSTAT_LOW_POWER | HWSTAT_ERROR:
                hwstat = self._reboot_power(hwstat)
            if not hwstat & HWSTAT_LOW_POWER:
                self._write_registers(Register.HWSTAT, bytes([hwstat | HWSTAT_LOW_POWER]),
                                      "power up")
            target = hwstat & 0x0F
            for _ in range(_HWSTAT_POLLS):
                self._write_registers(Register.HWSTAT, bytes([target]), "power up")
                if not self._read_registers(Register.HWSTAT, 1, "power up")[0] & HWSTAT_LOW_POWER:
                    break
                time.sleep(_HWSTAT_POLL_S)
            else:
                raise ScannerTimeout("the sensor stayed in low-power mode", device=self.name,
                                     operation="power up")
            if self._await(Interrupt.SCANPWR_ON, self.config.power_up_timeout_s, "power up"):
                return
            log.warning("%s: no scan-power event, powering up again", self.name)
        raise ScannerTimeout(f"no scan-power event after {_POWER_TRIES} power-ups",
                             device=self.name, operation="power up")

    def _reboot_power(self, hwstat: int) -> int:
        self._write_registers(Register.HWSTAT, bytes([hwstat & 0x0F]), "power up")
        for _ in range(_HWSTAT_POLLS):
            hwstat = self._read_registers(Register.HWSTAT, 1, "power up")[0]
            if hwstat & 0x01:
                return hwstat
            time.sleep(_HWSTAT_POLL_S)
        raise ScannerTimeout("could not reboot the sensor's power", device=self.name,
                             operation="power up")

    def _read_identity(self, device: usb.core.Device, info: bytes) -> Identity:
        profile = self._require_profile("open")
        return Identity(
            vendor=_string(device, device.iManufacturer) or "DigitalPersona",
            model=_string(device, device.iProduct) or profile.name,
            serial=_string(device, device.iSerialNumber) or "",
            # libfprint: "likely hardware revision, and firmware version; not sure which".
            firmware=f"{info[10]:02x}{info[11]:02x} {info[4]:02x}{info[5]:02x}",
        )

    # ---- imaging ----------------------------------------------------------------------

    def finger_present(self) -> bool:
        """Ask for the finger-on event; it comes at once when a finger is already down."""
        return self._finger_down("finger check")

    def capture(self, mode: CaptureMode) -> Frame:
        """One frame with a finger on the glass; :class:`NoFinger` when there is none."""
        self._check_mode(mode, "capture")
        if not self._finger_down("capture"):
            raise NoFinger("no finger on the platen", device=self.name, operation="capture")
        return self._frame("capture")

    def _finger_down(self, operation: str) -> bool:
        with self._usb(operation):
            self._write_registers(Register.MODE, bytes([Mode.AWAIT_FINGER_ON]), operation)
            return self._await(Interrupt.FINGER_ON, self.config.finger_wait_s, operation)

    def preview(self, mode: CaptureMode) -> Frame:
        """One frame whether or not a finger is down (live view of the glass)."""
        self._check_mode(mode, "preview")
        frame = self._frame("preview")
        frame.meta["preview"] = True
        return frame

    def _check_mode(self, mode: CaptureMode, operation: str) -> None:
        if mode != CaptureMode.FLAT_SINGLE:
            raise UnsupportedMode(f"{mode.value} is not available: flat single finger only",
                                  device=self.name, operation=operation)

    def _frame(self, operation: str) -> Frame:
        profile = self._require_profile(operation)
        device = self._require_device(operation)
        started = time.monotonic()
        with self._usb(operation):
            self._write_registers(Register.MODE, bytes([Mode.CAPTURE]), operation)
            raw = device.read(EP_BULK, FRAME_BYTES, self._ms(self.config.capture_timeout_s))
            try:
                frame = parse_frame(bytes(raw))
            except FrameError as exc:
                raise ProtocolError(f"bad frame: {exc}", device=self.name,
                                    operation=operation) from exc
            scrambled = profile.encryption or looks_scrambled(frame)
            rows = descramble(frame, lambda n: self._key_for(n, operation)) if scrambled else (
                frame.rows
            )
        image = 255 - assemble(frame, rows)  # the sensor reports light ridges
        if profile.flipped:
            image = image[::-1, ::-1]
        self._sequence += 1
        return Frame(
            image=np.ascontiguousarray(image),
            ppi=IMAGE_PPI,
            sequence=self._sequence,
            finger_present=self._finger_on,
            meta={
                "capture_s": round(time.monotonic() - started, 4),
                "scrambled": scrambled,
                "lines_sent": frame.num_lines,
            },
        )

    def _key_for(self, key_number: int, operation: str) -> int:
        """The device's key ``key_number``: it answers the key XOR a seed we pick."""
        seed = secrets.randbits(32)
        self._write_registers(Register.SCRAMBLE_DATA_INDEX,
                              bytes([key_number & 0xFF]) + seed.to_bytes(4, "little"), operation)
        answer = self._read_registers(Register.SCRAMBLE_DATA_KEY, 4, operation)
        return int.from_bytes(answer, "little") ^ seed

    # ---- transfers --------------------------------------------------------------------

    def _read_registers(self, first: int, count: int, operation: str) -> bytes:
        device = self._require_device(operation)
        data = device.ctrl_transfer(CTRL_IN, USB_REQUEST, first, 0, count,
                                    self._ms(self.config.control_timeout_s))
        if len(data) != count:
            raise ProtocolError(f"register 0x{first:02x}: {len(data)} of {count} bytes",
                                device=self.name, operation=operation)
        return bytes(data)

    def _write_registers(self, first: int, values: bytes, operation: str) -> None:
        device = self._require_device(operation)
        written = device.ctrl_transfer(CTRL_OUT, USB_REQUEST, first, 0, values,
                                       self._ms(self.config.control_timeout_s))
        if written != len(values):
            raise ProtocolError(f"register 0x{first:02x}: wrote {written} of {len(values)}",
                                device=self.name, operation=operation)

    def _await(self, event: Interrupt, timeout_s: float, operation: str) -> bool:
        """Read events until ``event`` arrives (True) or ``timeout_s`` passes (False)."""
        device = self._require_device(operation)
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                packet = device.read(EP_INTERRUPT, IRQ_LENGTH, max(1, self._ms(remaining)))
            except usb.core.USBTimeoutError:
                return False
            if len(packet) != IRQ_LENGTH:
                raise ProtocolError(f"short event packet ({len(packet)} bytes)",
                                    device=self.name, operation=operation)
            kind = int.from_bytes(bytes(packet[:2]), "big")
            if kind in (Interrupt.FINGER_ON, Interrupt.FINGER_OFF):
                self._finger_on = kind == Interrupt.FINGER_ON
            if kind == Interrupt.DEATH:
                log.warning("%s: device signals trouble (event 0x0800)", self.name)
            if kind == event:
                return True
        return False

    @contextlib.contextmanager
    def _usb(self, operation: str) -> Iterator[None]:
        """Turn pyusb's errors into the scanner error tree."""
        try:
            yield
        except usb.core.USBTimeoutError as exc:
            raise ScannerTimeout(f"USB transfer timed out: {exc}", device=self.name,
                                 operation=operation) from exc
        except usb.core.USBError as exc:
            if exc.errno in _DISCONNECTED_ERRNOS or exc.backend_error_code == -4:
                raise ScannerDisconnected(f"device gone: {exc}", device=self.name,
                                          operation=operation) from exc
            if exc.errno == errno.EPIPE:
                raise ProtocolError(f"endpoint stalled: {exc}", device=self.name,
                                    operation=operation) from exc
            raise ScannerError(f"USB error: {exc}", device=self.name,
                               operation=operation) from exc
        except usb.core.NoBackendError as exc:
            raise ScannerError(f"no USB backend: {exc}", device=self.name,
                               operation=operation) from exc

    def _require_device(self, operation: str) -> usb.core.Device:
        if self._device is None:
            raise ScannerDisconnected("device not open", device=self.name, operation=operation)
        return self._device

    def _require_profile(self, operation: str) -> Profile:
        self._require_device(operation)
        if self._profile is None:
            raise ScannerDisconnected("device not open", device=self.name, operation=operation)
        return self._profile

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, int(seconds * 1000))


def _string(device: usb.core.Device, index: int) -> str | None:
    """A string descriptor, or ``None`` when the device (or our permissions) won't give it."""
    try:
        return usb.util.get_string(device, index) if index else None
    except (usb.core.USBError, ValueError, NotImplementedError):
        return None
