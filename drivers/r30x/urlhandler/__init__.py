"""pyserial URL handlers of the R30x driver (``r30xemu://``).

pyserial finds a handler for ``scheme://`` by importing ``<package>.protocol_<scheme>`` for each
package in ``serial.protocol_handler_packages``; :mod:`drivers.r30x` appends this package there.
"""
