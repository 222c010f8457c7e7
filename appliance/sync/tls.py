"""Mutual TLS towards the broker, and what a failed handshake says about the station's clock.

A kiosk that lost its RTC battery boots in 1970 or in the factory's year; every certificate then
looks "not yet valid" or "expired" and the link fails with an opaque TLS error. This module builds
the client context (TLS 1.2 or newer, the broker verified against the configured CA, this
station's certificate presented) and sorts handshake failures so that a wrong clock is reported
as a clock problem the technician can fix, not as a broken certificate.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from appliance.errors import SyncError
from appliance.sync.config import TlsSection
from appliance.system.secrets import read_secret

# OpenSSL's X509_V_ERR codes (include/openssl/x509_vfy.h)
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_CRL_NOT_YET_VALID = 11
X509_V_ERR_CRL_HAS_EXPIRED = 12
_CLOCK_CODES = frozenset({X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED,
                          X509_V_ERR_CRL_NOT_YET_VALID, X509_V_ERR_CRL_HAS_EXPIRED})


class TlsSetupError(SyncError):
    """The station's TLS files cannot be used (missing, unreadable, wrong passphrase)."""


class TlsFailureKind(enum.StrEnum):
    """Why a TLS handshake failed, in the words shown to the technician."""

    CLOCK = "clock"  # the broker's certificate is outside its validity at our time: check the clock
    UNTRUSTED = "untrusted"  # the broker's certificate is not signed by our CA, or wrong host
    REFUSED = "refused"  # the broker refused our certificate (or we presented none)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TlsFailure:
    """One classified handshake failure."""

    kind: TlsFailureKind
    detail: str


def client_context(tls: TlsSection, passphrase: bytes | None = None) -> ssl.SSLContext:
    """The client side of mutual TLS: TLS 1.2+, broker verified by ``ca_file``, our cert shown."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    try:
        ctx.load_verify_locations(cafile=str(tls.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the CA file {tls.ca_file}: {exc}") from exc
    try:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file), password=passphrase)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"cannot load the client certificate {tls.cert_file} with its key {tls.key_file} "
            f"(wrong passphrase, or key and certificate do not match?): {exc}"
        ) from exc
    return ctx


def station_context(tls: TlsSection) -> ssl.SSLContext:
    """:func:`client_context` with the key's passphrase read from its credential, if it has one."""
    passphrase = (read_secret(tls.key_passphrase_credential).strip()
                  if tls.key_passphrase_credential else None)
    return client_context(tls, passphrase)


def classify(exc: BaseException) -> TlsFailure | None:
    """Sort a connection error; None when it is not a TLS failure at all."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        message = getattr(exc, "verify_message", "") or str(exc)
        if code in _CLOCK_CODES:
            return TlsFailure(
                TlsFailureKind.CLOCK,
                f"broker certificate {message} at this station's time "
                f"({datetime.now(UTC).isoformat(timespec='seconds')}): check the clock",
            )
        return TlsFailure(TlsFailureKind.UNTRUSTED, message)
    if isinstance(exc, ssl.CertificateError):
        return TlsFailure(TlsFailureKind.UNTRUSTED, str(exc))
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).lower()
        if "certificate" in reason and "alert" in reason:
            return TlsFailure(TlsFailureKind.REFUSED, f"the broker refused our certificate: {exc}")
        return TlsFailure(TlsFailureKind.OTHER, str(exc))
    return None


def certificate_window(cert_file: Path) -> tuple[datetime, datetime]:
    """The validity period of our own certificate (not before, not after), in UTC."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsSetupError(f"cannot read certificate {cert_file}: {exc}") from exc
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def clock_against_certificate(cert_file: Path, now: datetime | None = None) -> str | None:
    """A clock problem the station can see on its own: its certificate is not valid *now*.

    A certificate issued last week that looks "not yet valid" means the clock is behind; that is
    reported before any connection is tried. Returns a sentence, or None when the clock fits.
    """
    start, end = certificate_window(cert_file)
    now = now or datetime.now(UTC)
    if now < start:
        return (f"this station's clock ({now.isoformat(timespec='seconds')}) is before its "
                f"certificate's start ({start.isoformat(timespec='seconds')}): check the clock")
    if now > end:
        return (f"this station's certificate expired at {end.isoformat(timespec='seconds')} "
                f"(station time {now.isoformat(timespec='seconds')}): renew it or check the clock")
    return None
