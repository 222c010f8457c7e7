"""The serial driver for the R30x family of UART fingerprint modules, and its emulator.

Importing the package registers the ``r30xemu://`` pyserial URL handler.
"""

import serial

from drivers.r30x.driver import R30xConfig, R30xDriver

_URL_HANDLERS = "drivers.r30x.urlhandler"
if _URL_HANDLERS not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(_URL_HANDLERS)

__all__ = ["R30xConfig", "R30xDriver"]
