"""Talking to the operating system: sd_notify, the watchdog, clock trust, logging."""
