"""The web section of the configuration: where the kiosk and technician pages listen."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from appliance.strict import Strict


class TechnicianTls(Strict):
    """HTTPS for the technician page on the LAN (the kiosk stays on loopback)."""

    host: str = Field("0.0.0.0", description="Address the technician page listens on over TLS.")
    port: int = Field(8443, ge=0, le=65535, description="Port of the technician page (HTTPS).")
    certificate: Path = Field(
        Path("/etc/booking-station/tls/admin.crt"),
        description="PEM certificate (made by the installer, or the agency's own).")
    key_file: Path = Field(
        Path("/etc/booking-station/tls/admin.key"),
        description="Its private key (PEM; the installer makes it 0640 root:booking-station).")
    key_credential: str | None = Field(
        None, description="Credential holding the private key instead of key_file, if set.")
    names: tuple[str, ...] = Field(
        (), description="Names and addresses a generated certificate is made for "
        "(default: web.server_names).")


class WebSection(Strict):
    """The kiosk and admin pages."""

    host: str = Field(
        "127.0.0.1", description="Address the kiosk (and the plain-HTTP technician page) listens "
        "on: loopback only (127.0.0.1, ::1 or localhost); the LAN reaches the technician page "
        "over HTTPS through [web.technician_tls].")
    port: int = Field(8080, ge=0, le=65535, description="Port of the kiosk and admin pages.")
    server_names: tuple[str, ...] = Field(
        (),
        description="Host names the pages answer to besides localhost, 127.0.0.1, ::1 and "
        "web.host (e.g. the station's LAN name for the technician page); any other Host header "
        "is refused.",
    )
    preview_fps: float = Field(15.0, gt=0, le=60, description="Live preview frames per second.")
    technician_tls: TechnicianTls | None = Field(
        None, description="Serve the technician page over HTTPS on the LAN; unset: loopback "
        "only, plain HTTP.")
    admin_users_credential: str = Field(
        "booking-station-admin-users",
        description="Credential holding 'user:role:argon2id-hash' lines for the technician "
        "page (roles: technician, auditor).",
    )
    officers_credential: str = Field(
        "booking-station-officers",
        description="Credential holding the kiosk officers' 'officer_id:argon2id-hash' lines "
        "(their PINs).",
    )
    kiosk_idle_lock_s: float = Field(
        300.0, ge=15, le=3600,
        description="Seconds without a touch before the kiosk locks (the booking in progress is "
        "kept; the officer signs in again).",
    )

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if not is_loopback(host):
            raise ValueError(
                f"{host!r} would serve the kiosk and its sign-in over plain HTTP beyond this "
                "machine; keep web.host on 127.0.0.1 (binding beyond it is for the technician "
                "page's HTTPS listener, [web.technician_tls])")
        return host


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: localhost or a loopback address."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
