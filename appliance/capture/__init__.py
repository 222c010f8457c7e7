"""The guided capture sequence: one booking at a time, driven from the kiosk or the autopilot."""
