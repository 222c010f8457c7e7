"""booking-station: the software of a fingerprint booking station."""

__version__ = "0.1.0"
