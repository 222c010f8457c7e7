"""The station's secrets, made once on first install and never touched again.

Run by install.sh with the application venv's Python. Each file is written only when absent, so
re-running the installer (or upgrading) keeps the store key that opens the store, and the
logins people already use. New passwords and PINs are printed once, here, and stored only as
hashes. Files (see docs/install.md):

- ``credentials/db-key``: the store's AES-256 key, 64 hex digits (0600 root).
- ``credentials/admin-users``: technician logins, ``user:$argon2id$...`` lines as
  ``booking-station hash-password USER`` prints them (0600 root).
- ``credentials/officers``: kiosk officers, ``officer_id:$argon2id$...`` lines (0600 root).
- ``credentials/mqtt-password``: the broker password, only with ``--mqtt-user`` (0600 root).
- ``central-ed25519.pub``: central's Ed25519 public key (PEM), only with ``--central-key FILE``
  (0644 root); the example configs list it in ``mqtt.central_keys``.
- ``tls/admin.crt`` and ``tls/admin.key``: a self-signed certificate for the technician page
  (0644 root, and 0640 root:<service user> so the service can read the key).
"""

from __future__ import annotations

import argparse
import datetime
import grp
import ipaddress
import os
import secrets
import socket
import subprocess
from pathlib import Path

from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

CERT_DAYS = 5 * 365


def write_new(path: Path, content: bytes, mode: int, group: str | None = None) -> bool:
    """Create ``path`` with ``content`` and ``mode`` unless it exists; True when written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    if group is not None:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    os.chmod(path, mode)
    return True


def technician_line(booking_station: str, user: str, password: str) -> bytes:
    """The admin-users line, from the station's own ``hash-password`` command."""
    result = subprocess.run([booking_station, "hash-password", user], input=password + "\n",
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().encode() + b"\n"


def admin_certificate(hostname: str) -> tuple[bytes, bytes]:
    """A self-signed P-256 certificate for the technician page and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if "." not in hostname:
        alt_names.insert(1, x509.DNSName(hostname + ".local"))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def central_key(given: Path, slot: Path) -> list[str]:
    """Install central's public key in its slot unless one is there; refuse anything else."""
    pem = given.read_bytes()
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SystemExit(f"first_boot: {given} is not an Ed25519 public key")
    if write_new(slot, pem, 0o644):
        return [f"central's public key: {slot} (acks and commands must be signed by it)"]
    if slot.read_bytes() != pem:
        return [f"central's public key: {slot} kept; for a rollover add the new key's path to "
                "mqtt.central_keys"]
    return []


def main() -> int:
    """Write whichever secrets are missing; print the new passwords and PINs once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etc", type=Path, default=Path("/etc/booking-station"))
    parser.add_argument("--service-user", default="booking-station")
    parser.add_argument("--admin-user", default="tech")
    parser.add_argument("--officer", default="officer1")
    parser.add_argument("--mqtt-user", default="")
    parser.add_argument("--central-key", type=Path, default=None,
                        help="central's Ed25519 public key (PEM) from the agency")
    parser.add_argument("--booking-station", default="booking-station",
                        help="the station command whose hash-password makes technician lines")
    args = parser.parse_args()

    creds = args.etc / "credentials"
    tls = args.etc / "tls"
    creds.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(creds, 0o700)
    tls.mkdir(mode=0o750, exist_ok=True)
    os.chown(tls, 0, grp.getgrnam(args.service_user).gr_gid)
    os.chmod(tls, 0o750)
    told: list[str] = []

    if write_new(creds / "db-key", secrets.token_bytes(32).hex().encode() + b"\n", 0o600):
        told.append(f"store key: new, in {creds / 'db-key'} (back it up: the store is unreadable "
                    "without it)")
    password = secrets.token_urlsafe(12)
    if write_new(creds / "admin-users",
                 technician_line(args.booking_station, args.admin_user, password), 0o600):
        told.append(f"technician login: {args.admin_user} / {password}")
    pin = f"{secrets.randbelow(10**6):06d}"
    officer_line = f"{args.officer}:{PasswordHasher().hash(pin)}\n".encode()
    if write_new(creds / "officers", officer_line, 0o600):
        told.append(f"kiosk officer: {args.officer} / PIN {pin}")
    if args.mqtt_user:
        broker_password = secrets.token_urlsafe(18)
        if write_new(creds / "mqtt-password", broker_password.encode() + b"\n", 0o600):
            told.append(f"broker user {args.mqtt_user}: password in {creds / 'mqtt-password'} "
                        "(add it to the broker's password file)")
    if args.central_key is not None:
        told += central_key(args.central_key, args.etc / "central-ed25519.pub")
    if not (tls / "admin.key").exists():
        cert_pem, key_pem = admin_certificate(socket.gethostname())
        write_new(tls / "admin.key", key_pem, 0o640, group=args.service_user)
        (tls / "admin.crt").unlink(missing_ok=True)
        write_new(tls / "admin.crt", cert_pem, 0o644)
        told.append(f"technician page certificate: new, self-signed, {tls / 'admin.crt'}")
    for line in told:
        print(f"==> {line}")
    if any("login" in line or "PIN" in line for line in told):
        print("==> these passwords are shown only now; change them after the first sign-in")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
