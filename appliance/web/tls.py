"""HTTPS for the technician page on the LAN: the certificate, its key, its fingerprint.

The installer makes a self-signed certificate for the station's names (or the agency puts its
own in place); the technician checks the fingerprint ``booking-station tls`` prints against
the one the browser shows on first visit. The kiosk never leaves loopback: the TLS listener
serves the technician's paths only (:func:`technician_only`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.errors import ConfigError
from appliance.system.secrets import credential_path
from appliance.web.config import TechnicianTls
from appliance.web.security import ASGIApp, Receive, Scope, Send

#: What the TLS listener serves: the technician's page, its API and its static files.
TECHNICIAN_PATHS = ("/admin", "/api/admin/", "/openapi.json", "/static/admin", "/static/uPlot")
VALID_DAYS = 5 * 365


def key_path(tls: TechnicianTls) -> Path:
    """The private key's file: the systemd credential when one is named and present."""
    found = credential_path(tls.key_credential) if tls.key_credential else None
    return found if found is not None else tls.key_file


def fingerprint(certificate: Path) -> str:
    """``SHA256:`` and the certificate's digest as colon-separated hex pairs."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{certificate}: not a readable PEM certificate: {exc}") from exc
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate(certificate: Path, key: Path, names: Iterable[str],
             now: dt.datetime | None = None) -> str:
    """A self-signed P-256 certificate for ``names`` (host names or addresses); its fingerprint.

    The key is written 0600 before the certificate, so a half-done run leaves no certificate
    without its key.
    """
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        raise ConfigError("web.technician_tls: the certificate needs at least one name")
    private = ec.generate_private_key(ec.SECP256R1())
    start = now or dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "booking-station")])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(minutes=5))
            .not_valid_after(start + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(private, hashes.SHA256()))
    key.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    certificate.parent.mkdir(parents=True, exist_ok=True)
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint(certificate)


def technician_only(app: ASGIApp) -> ASGIApp:
    """``app`` answering only the technician's paths; anything else is 404 on this listener."""

    async def gate(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not str(scope.get("path", "")).startswith(
                TECHNICIAN_PATHS):
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            body = b'{"detail":"not served on this address"}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return gate
