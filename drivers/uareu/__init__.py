"""The USB driver for DigitalPersona U.are.U 4000/4000B/4500 readers, and its pyusb emulator."""

from drivers.uareu.device import UareUDevice, UareUEmulatorConfig
from drivers.uareu.driver import UareUConfig, UareUDriver
from drivers.uareu.emulator import UareUBackend

__all__ = ["UareUBackend", "UareUConfig", "UareUDevice", "UareUDriver", "UareUEmulatorConfig"]
