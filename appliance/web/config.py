"""The web section of the configuration: where the kiosk and technician pages listen."""

from __future__ import annotations

from pydantic import Field

from appliance.strict import Strict


class WebSection(Strict):
    """The kiosk and admin pages."""

    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the kiosk and admin pages.")
    server_names: tuple[str, ...] = Field(
        (),
        description="Host names the pages answer to besides localhost, 127.0.0.1, ::1 and "
        "web.host (e.g. the station's LAN name for the technician page); any other Host header "
        "is refused.",
    )
    preview_fps: float = Field(15.0, gt=0, le=60, description="Live preview frames per second.")
    admin_users_credential: str = Field(
        "booking-station-admin-users",
        description="Credential holding 'user:pbkdf2-hash' lines for the admin page.",
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
