"""The demo's MQTT broker: a Mosquitto process in the production shape, or one already listening.

By default the demo starts its own Mosquitto with password authentication and the production
ACL (docs/mosquitto-acl.conf): the station may publish only under its own prefix and read only
its own acks and commands; central reads every station. ``--broker existing`` uses whatever
listens on 127.0.0.1:1883 instead, which proves nothing about who may publish what. The station
is only ever tested against a real broker; when Debian's ``mosquitto`` is not installed the
demo stops and names the one command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

#: What to run when Mosquitto is missing.
INSTALL_HINT = "sudo apt-get install mosquitto"
ACL = Path(__file__).resolve().parent.parent / "docs" / "mosquitto-acl.conf"


class BrokerUnavailable(RuntimeError):
    """No broker is listening and none can be started."""


@dataclass(slots=True)
class Broker:
    """Where the demo's MQTT broker listens and what it is."""

    host: str
    port: int
    kind: str
    authenticated: bool = False


def mqtt_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections there and answers an MQTT 5 CONNECT."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # CONNECT, MQTT 5, clean start, keepalive 5, no properties, client id "probe"
            sock.sendall(bytes([0x10, 18, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 5, 0, 0, 5])
                         + b"probe")
            reply = sock.recv(4)
            return len(reply) >= 2 and reply[0] == 0x20
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mosquitto_binary() -> str | None:
    """Debian's mosquitto, wherever it is installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )


def write_broker_config(folder: Path, port: int, users: Mapping[str, str]) -> Path:
    """mosquitto.conf, its password file (mosquitto_passwd) and the ACL in ``folder``."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        raise BrokerUnavailable(f"mosquitto_passwd is not installed; install it with: "
                                f"{INSTALL_HINT}")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    passwords = folder / "passwords"
    passwords.unlink(missing_ok=True)
    passwords.touch(mode=0o600)
    for name, password in users.items():
        # -b puts the password on mosquitto_passwd's command line: this machine's demo only
        subprocess.run([passwd_tool, "-b", str(passwords), name, password], check=True,
                       capture_output=True, timeout=60)
    acl = folder / "acl"
    shutil.copyfile(ACL, acl)
    conf = folder / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous false",
             f"password_file {passwords}", f"acl_file {acl}", "persistence false",
             "max_packet_size 1048576", "set_tcp_nodelay true",
             f"log_dest file {folder / 'mosquitto.log'}"]
    if os.geteuid() == 0:
        lines.append("user root")  # the files above are root's, mode 600
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextlib.asynccontextmanager
async def demo_broker(host: str = "127.0.0.1", port: int = 1883, prefer: str = "mosquitto", *,
                      folder: Path | None = None, users: Mapping[str, str] | None = None
                      ) -> AsyncIterator[Broker]:
    """The demo's broker: a new authenticated Mosquitto in ``folder``, or the one listening.

    ``prefer``: ``mosquitto`` (or ``auto``) starts a process with ``users`` (name -> password)
    and the production ACL; ``existing`` uses the broker on ``host:port`` as it is.
    """
    if prefer == "existing":
        if not mqtt_listening(host, port):
            raise BrokerUnavailable(f"no MQTT broker answers on {host}:{port}")
        yield Broker(host, port, "existing broker (its own access rules)")
        return
    mosquitto = mosquitto_binary()
    if mosquitto is None:
        raise BrokerUnavailable(f"Mosquitto is not installed; install it with: {INSTALL_HINT}")
    if folder is None or users is None:
        raise ValueError("a Mosquitto process needs its folder and users")
    free = free_port()
    conf = write_broker_config(folder, free, users)
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not mqtt_listening("127.0.0.1", free):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = folder / "mosquitto.log"
                said = log.read_text(errors="replace")[-300:] if log.exists() else ""
                raise BrokerUnavailable(f"mosquitto did not start: {said.strip()}")
            await asyncio.sleep(0.05)
        yield Broker("127.0.0.1", free, "mosquitto process (passwords + ACL)", True)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
