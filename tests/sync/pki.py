"""A throwaway certificate authority for TLS tests (the `cryptography` package, EC P-256)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.sync.config import TlsSection


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


@dataclass
class Pki:
    directory: Path
    ca_key: ec.EllipticCurvePrivateKey = field(init=False)
    ca_cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(_name("bst test CA"))
            .issuer_name(_name("bst test CA")).public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=3650))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def issue(self, cn: str, *, server: bool = False, not_before: datetime | None = None,
              not_after: datetime | None = None, name: str | None = None) -> tuple[Path, Path]:
        """A certificate and key signed by this CA; returns (cert path, key path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        stem = name or cn
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return cert_path, key_path

    def client_section(self, cn: str, **kw) -> TlsSection:
        cert, key = self.issue(cn, **kw)
        return TlsSection(ca_file=self.ca_file, cert_file=cert, key_file=key)

    def broker_lines(self, *, name: str = "broker", **kw) -> str:
        """mosquitto.conf lines for a mutual-TLS listener (append after the `listener` line)."""
        cert, key = self.issue("localhost", server=True, name=name, **kw)
        # started as root, mosquitto would drop to the `mosquitto` user before reading the files,
        # which cannot enter pytest's private tmp dirs; "user root" keeps it (no effect otherwise)
        return (f"user root\ncafile {self.ca_file}\ncertfile {cert}\nkeyfile {key}\n"
                "require_certificate true\nuse_identity_as_username true\n"
                "tls_version tlsv1.2\n")
