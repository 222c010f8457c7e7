"""The kiosk page (booking officer) and the admin page (technician), built by a factory."""
