"""Can this machine run this configuration? The checks ``check-config`` and ``run`` share.

The config models say whether a file is well formed; these checks look at the machine: the
data folder is a folder the service can write and others cannot read, every secret and file
the config names can be read (central's public keys included), the kiosk's host name resolves.
Whatever ``run`` would crash on is an error here, with its key path and one line of reason.
What ``run`` survives (a broker host that does not resolve yet: bookings work offline and the
link keeps retrying) is a warning, so that a station still starts while the network is down;
so is trusting unsigned acks or commands, or holding no key of central's to check them with.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.config import ConfigProblem, StationConfig
from appliance.errors import StationError
from appliance.store.keys import read_current_key
from appliance.sync.config import MqttSection
from appliance.sync.signing import load_public_key
from appliance.sync.tls import station_context
from appliance.system.secrets import read_secret
from appliance.web.config import is_loopback


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the checks found: errors stop the station, warnings are printed."""

    errors: list[ConfigProblem]
    warnings: list[ConfigProblem]


def preflight(config: StationConfig) -> Preflight:
    """Every check against this machine, in the order a reader of the file meets the keys."""
    errors: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    errors += _data_dir(config.station.data_dir)
    errors += _secret("store.key_credential", lambda: read_current_key(config.store))
    mqtt = config.mqtt
    if mqtt.tls is not None:
        tls = mqtt.tls
        errors += _secret("mqtt.tls", lambda: station_context(tls))
    if mqtt.username and mqtt.password_credential:
        name = mqtt.password_credential
        errors += _secret("mqtt.password_credential", lambda: read_secret(name))
    for n, key in enumerate(mqtt.central_keys):
        errors += _secret(f"mqtt.central_keys[{n}]", lambda key=key: load_public_key(key))
    warnings += _trust(mqtt)
    technician_tls = config.web.technician_tls
    if technician_tls is not None:
        from appliance.web.tls import key_path

        tls_section = technician_tls

        def certificate_and_key() -> None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls_section.certificate), str(key_path(tls_section)))

        errors += _secret("web.technician_tls", certificate_and_key)
        if not _resolves(technician_tls.host):
            errors.append(ConfigProblem(path="web.technician_tls.host", message=(
                f"{technician_tls.host!r} does not resolve to an address")))
        elif not is_loopback(technician_tls.host):
            warnings.append(ConfigProblem(path="web.technician_tls.host", message=(
                f"the technician page answers beyond this machine, over HTTPS on "
                f"{technician_tls.host}:{technician_tls.port}; let the firewall admit only the "
                "technicians' network (web.host, the kiosk, stays on loopback)")))
    if not _resolves(mqtt.host):
        warnings.append(ConfigProblem(
            path="mqtt.host", message=f"{mqtt.host!r} does not resolve now; the station starts "
            "and keeps retrying (bookings work offline)"))
    return Preflight(errors, warnings)


def _trust(mqtt: MqttSection) -> list[ConfigProblem]:
    """What the station would believe unsigned: said out loud, every time the config is read."""
    if mqtt.central_keys:
        return []
    found = []
    if mqtt.allow_unsigned_acks:
        found.append(ConfigProblem(path="mqtt.allow_unsigned_acks", message=(
            "unsigned acks are applied: anyone who can publish on the broker can mark a "
            "booking delivered (its biometrics are then purged); test benches only")))
    else:
        found.append(ConfigProblem(path="mqtt.central_keys", message=(
            "no central public key: bookings are kept but none is marked delivered until "
            "central's key is installed and listed here")))
    if mqtt.allow_unsigned_commands:
        found.append(ConfigProblem(path="mqtt.allow_unsigned_commands", message=(
            "unsigned commands are obeyed: anyone who can publish on the broker can pause or "
            "throttle this station; test benches only")))
    return found


def _data_dir(path: Path) -> list[ConfigProblem]:
    key = "station.data_dir"
    path = path.absolute()
    if path.exists():
        if not path.is_dir():
            return [ConfigProblem(path=key, message=f"{path} exists and is not a folder")]
        if not _writable(path):
            return [ConfigProblem(path=key, message=f"{path} is not writable by this user")]
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            return [ConfigProblem(path=key, message=f"{path} can be read by others (mode "
                                  f"{mode:o}); chmod 700 it")]
        return []
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not _writable(parent):
        return [ConfigProblem(path=key, message=f"{path} does not exist and cannot be created "
                              f"({parent} is not a writable folder)")]
    return []


def _writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (tried: root passes every access() check)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".preflight-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _secret(key: str, load: object) -> list[ConfigProblem]:
    try:
        load()  # type: ignore[operator]
    except (StationError, OSError, ValueError) as exc:
        return [ConfigProblem(path=key, message=str(exc).splitlines()[0])]
    return []


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True
