"""An emulated U.are.U 4000/4000B/4500 presented to pyusb as a backend.

``usb.core.find(backend=UareUBackend(...))`` finds a reader with real descriptors (one vendor-
specific interface, interrupt endpoint 0x81, bulk endpoint 0x82), and the real driver's control,
interrupt and bulk transfers reach :class:`~drivers.uareu.device.UareUDevice`. A pulled cable
makes every call fail with ``ENODEV``, as libusb's ``LIBUSB_ERROR_NO_DEVICE`` does; transfers
that get no answer raise ``USBTimeoutError`` after their time limit.
"""

from __future__ import annotations

import errno
import time
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from drivers.uareu.device import UareUDevice, UareUEmulatorConfig, Unplugged
from drivers.uareu.protocol import (
    CTRL_IN,
    CTRL_OUT,
    EP_BULK,
    EP_INTERRUPT,
    INTERFACE_CLASS,
    IRQ_LENGTH,
    USB_REQUEST,
    VENDOR_ID,
)

_LIBUSB_ERROR_NO_DEVICE, _LIBUSB_ERROR_TIMEOUT, _LIBUSB_ERROR_PIPE = -4, -7, -9


def _no_device() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)",
                             _LIBUSB_ERROR_NO_DEVICE, errno.ENODEV)


def _timeout() -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError("Operation timed out", _LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT)


def _stall() -> usb.core.USBError:
    return usb.core.USBError("Pipe error", _LIBUSB_ERROR_PIPE, errno.EPIPE)


class _Handle(SimpleNamespace):
    device: UareUDevice
    generation: int


class UareUBackend(usb.backend.IBackend):
    """A pyusb backend whose bus holds one emulated U.are.U reader."""

    def __init__(self, device: UareUDevice | UareUEmulatorConfig | None = None) -> None:
        super().__init__()
        if not isinstance(device, UareUDevice):
            device = UareUDevice(device)
        self.device = device
        self._configuration = 1
        self._claimed: set[int] = set()

    # ---- descriptors ----------------------------------------------------------------------

    def enumerate_devices(self) -> Any:
        """The bus: the reader while it is plugged in."""
        if self.device.plugged:
            yield self.device

    def get_parent(self, dev: UareUDevice) -> None:
        """Attached to the root hub."""
        return None

    def get_device_descriptor(self, dev: UareUDevice) -> SimpleNamespace:
        """Device descriptor (USB 2.0 full speed, vendor 0x05ba)."""
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=VENDOR_ID,
            idProduct=dev.profile.product_id, bcdDevice=0x0104, iManufacturer=1, iProduct=2,
            iSerialNumber=3, bNumConfigurations=1, address=2 + dev.generation, bus=1,
            port_number=1, port_numbers=(1,), speed=2,
        )

    def get_configuration_descriptor(self, dev: UareUDevice, config: int) -> SimpleNamespace:
        """The single configuration: one interface, bus powered, 100 mA."""
        if config != 0:
            raise IndexError("configuration index out of range")
        return SimpleNamespace(
            bLength=9, bDescriptorType=2, wTotalLength=9 + 9 + 7 + 7, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0xA0, bMaxPower=50,
            extra_descriptors=[],
        )

    def get_interface_descriptor(
        self, dev: UareUDevice, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Interface 0: vendor class 255/255/255 with two endpoints."""
        if config != 0 or intf != 0 or alt != 0:
            raise IndexError("interface index out of range")
        return SimpleNamespace(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=2, bInterfaceClass=INTERFACE_CLASS, bInterfaceSubClass=INTERFACE_CLASS,
            bInterfaceProtocol=INTERFACE_CLASS, iInterface=0, extra_descriptors=[],
        )

    def get_endpoint_descriptor(
        self, dev: UareUDevice, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Endpoint 0x81 (interrupt, events) and 0x82 (bulk, frames)."""
        if config != 0 or intf != 0 or alt != 0 or ep not in (0, 1):
            raise IndexError("endpoint index out of range")
        address, attributes, interval = (EP_INTERRUPT, 0x03, 1) if ep == 0 else (EP_BULK, 0x02, 0)
        return SimpleNamespace(
            bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=attributes,
            wMaxPacketSize=64, bInterval=interval, bRefresh=0, bSynchAddress=0,
            extra_descriptors=[],
        )

    # ---- handles --------------------------------------------------------------------------

    def _check(self, handle: _Handle) -> UareUDevice:
        device = handle.device
        if not device.plugged or handle.generation != device.generation:
            raise _no_device()
        return device

    def open_device(self, dev: UareUDevice) -> _Handle:
        """A handle; fails with ENODEV once the cable is pulled."""
        if not dev.plugged:
            raise _no_device()
        return _Handle(device=dev, generation=dev.generation)

    def close_device(self, dev_handle: _Handle) -> None:
        """Nothing to release."""
        self._claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        """Only configuration 1 exists."""
        self._check(dev_handle)
        if config_value not in (0, 1):
            raise _stall()
        self._configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        """The active configuration value."""
        self._check(dev_handle)
        return self._configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        """Only alternate setting 0 exists."""
        self._check(dev_handle)
        if intf != 0 or altsetting != 0:
            raise _stall()

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Claim interface 0."""
        self._check(dev_handle)
        self._claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Release an interface."""
        self._check(dev_handle)
        self._claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        """No kernel driver binds to the emulated reader."""
        self._check(dev_handle)
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """Nothing to detach."""
        self._check(dev_handle)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """Nothing to attach."""
        self._check(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        """A USB port reset powers the reader up from scratch."""
        self._check(dev_handle).power_on()

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        """Endpoints never halt here."""
        self._check(dev_handle)

    # ---- transfers ------------------------------------------------------------------------

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,  # noqa: N803 - pyusb's parameter names
        bRequest: int,  # noqa: N803
        wValue: int,  # noqa: N803
        wIndex: int,  # noqa: N803
        data: Any,
        timeout: int,
    ) -> int:
        """Standard GET_DESCRIPTOR for strings, and the vendor register request."""
        device = self._check(dev_handle)
        if bmRequestType == 0x80 and bRequest == 0x06:
            answer = self._descriptor(device, wValue >> 8, wValue & 0xFF)[: len(data)]
        elif bRequest == USB_REQUEST and bmRequestType == CTRL_IN:
            try:
                answer = device.read_registers(wValue, len(data))
            except ValueError:
                raise _stall() from None
        elif bRequest == USB_REQUEST and bmRequestType == CTRL_OUT:
            try:
                device.write_registers(wValue, bytes(data))
            except ValueError:
                raise _stall() from None
            return len(data)
        else:
            raise _stall()
        data[: len(answer)] = type(data)(data.typecode, answer)
        return len(answer)

    def intr_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        """An event from endpoint 0x81, or a timeout after ``timeout`` ms."""
        device = self._check(dev_handle)
        if ep != EP_INTERRUPT:
            raise _stall()
        deadline = time.monotonic() + timeout / 1000
        while True:
            event = device.interrupt()
            if event is not None:
                packet = int(event).to_bytes(2, "big") + bytes(IRQ_LENGTH - 2)
                count = min(len(buff), len(packet))
                buff[:count] = type(buff)(buff.typecode, packet[:count])
                return count
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout()
            time.sleep(min(remaining, 0.01))  # a finger may come down meanwhile
            self._check(dev_handle)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        """A frame from endpoint 0x82 in capture mode."""
        device = self._check(dev_handle)
        if ep != EP_BULK:
            raise _stall()
        try:
            frame = device.frame()
        except Unplugged:
            raise _no_device() from None
        if frame is None:
            time.sleep(timeout / 1000)
            raise _timeout()
        if len(frame) > len(buff):
            raise usb.core.USBError("Overflow", -8, errno.EOVERFLOW)
        buff[: len(frame)] = type(buff)(buff.typecode, frame)
        return len(frame)

    def _descriptor(self, device: UareUDevice, kind: int, index: int) -> bytes:
        if kind == 0x03:  # string
            if index == 0:
                return bytes([4, 3, 0x09, 0x04])  # English (United States)
            strings = {
                1: "DigitalPersona, Inc.",
                2: f"{device.profile.name} Fingerprint Reader (emulated)",
                3: device.serial_number,
            }
            if index not in strings:
                raise _stall()
            text = strings[index].encode("utf-16-le")
            return bytes([2 + len(text), 3]) + text
        raise _stall()
