"""Sync to the central service over MQTT 5: the link, the upload protocol, telemetry."""
