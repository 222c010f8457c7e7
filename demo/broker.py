"""The demo's MQTT broker: the Mosquitto already listening, else a Mosquitto process it starts.

The station is only ever tested against a real broker; when Debian's ``mosquitto`` is not
installed the demo stops and names the one command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

#: What to run when Mosquitto is missing.
INSTALL_HINT = "sudo apt-get install mosquitto"


class BrokerUnavailable(RuntimeError):
    """No broker is listening and none can be started."""


@dataclass(slots=True)
class Broker:
    """Where the demo's MQTT broker listens and what it is."""

    host: str
    port: int
    kind: str


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


@contextlib.asynccontextmanager
async def demo_broker(host: str = "127.0.0.1", port: int = 1883,
                      prefer: str = "auto") -> AsyncIterator[Broker]:
    """The first broker that works: the one listening on ``host:port``, or a new process."""
    if prefer in ("auto", "existing") and mqtt_listening(host, port):
        yield Broker(host, port, "existing mosquitto")
        return
    if prefer == "existing":
        raise BrokerUnavailable(f"no MQTT broker answers on {host}:{port}")
    mosquitto = mosquitto_binary()
    if mosquitto is None:
        raise BrokerUnavailable(f"Mosquitto is not installed; install it with: {INSTALL_HINT}")
    free = free_port()
    with tempfile.TemporaryDirectory(prefix="bst-mosquitto-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {free} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nmax_packet_size 1048576\n")
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not mqtt_listening("127.0.0.1", free):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BrokerUnavailable("mosquitto did not start")
                await asyncio.sleep(0.05)
            yield Broker("127.0.0.1", free, "mosquitto process")
        finally:
            proc.terminate()
            proc.wait(5)
