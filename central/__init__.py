"""The reference central receiver: the other end of the station's sync protocol.

Used by the demo and the tests, and a readable model for integrators who build the real central
side (see docs/central.md and docs/asyncapi.yaml).
"""
