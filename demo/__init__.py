"""The demo: the whole station on an embedded default, from a source checkout (``make demo``).

Not part of the installed product: it starts a Mosquitto broker when none is listening, the
reference central receiver and the station with the emulated ten-print livescan, and with
``--bookings N`` takes N bookings unattended as the smoke test anyone can run.
"""
