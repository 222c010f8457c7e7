"""The station as the installer leaves it: its secrets made by install/first_boot.py, handed
over the way the unit's LoadCredential lines say, and the service process run under a notify
socket the test holds (systemd is not PID 1 here)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.web.auth import hash_password
from tests.kiosk_client import OFFICER, PIN

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
INSTALL = REPO / "install"
STATION_COMMAND = Path(sys.executable).parent / "booking-station"
ETC = "/etc/booking-station"


def unit_settings(unit: Path, key: str) -> list[str]:
    """Every value of ``key`` in the unit file (systemd allows a key many times)."""
    values: list[str] = []
    section = None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        name, _, value = line.partition("=")
        if section and name.strip() == key:
            values.append(value.strip())
    return values


def make_secrets(etc: Path, *extra: str) -> Path:
    """Run the installer's first-boot step into ``etc`` (the service group: this user's)."""
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    subprocess.run([sys.executable, str(INSTALL / "first_boot.py"), "--etc", str(etc),
                    "--service-user", group, "--booking-station", str(STATION_COMMAND), *extra],
                   check=True, capture_output=True, text=True, timeout=120)
    return etc


def credentials_from_unit(etc: Path, dest: Path) -> Path:
    """$CREDENTIALS_DIRECTORY as systemd would fill it from the unit's LoadCredential lines."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    for line in unit_settings(SYSTEMD / "booking-station.service", "LoadCredential"):
        name, _, source = line.partition(":")
        assert source.startswith(ETC + "/"), source
        (dest / name).write_bytes((etc / source.removeprefix(ETC + "/")).read_bytes())
    return dest


class NotifySocket:
    """The datagram socket systemd listens on for a Type=notify service."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[tuple[float, str]]:
        return [(at, line) for at, msg in list(self.messages) for line in msg.split("\n")]

    def wait_for(self, text: str, timeout: float, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in self.lines():
                if at >= after and (line == text or line.startswith(text)):
                    return at
            time.sleep(0.05)
        raise AssertionError(f"{text} not received; got {[m for _, m in self.messages]}")

    def close(self) -> None:
        self._stop = True
        self.sock.close()


# PR_SET_MDWE (Linux 6.3): the kernel's MemoryDenyWriteExecute, inherited by children.
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> None:
    """In the child before exec: no memory may ever be both writable and executable."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def as_the_unit_starts_it(mdwe: bool) -> Callable[[], None]:
    """In the child before exec: the unit's UMask=0077, and MemoryDenyWriteExecute if asked."""
    def prepare() -> None:
        os.umask(0o077)
        if mdwe:
            deny_write_execute()

    return prepare


def mdwe_supported() -> bool:
    call = f"prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0)"
    code = f"import ctypes, sys\nsys.exit(ctypes.CDLL(None).{call})"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True)
    return probe.returncode == 0


@dataclass
class StationProcess:
    """``booking-station run`` as systemd starts it: credentials, notify socket, watchdog."""

    tmp: Path
    config: Path
    web_port: int
    mdwe: bool = False
    watchdog_usec: int = 1_000_000
    notify: NotifySocket = field(init=False)
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def start(self) -> None:
        etc = self.tmp / "etc"
        if not (etc / "credentials" / "db-key").exists():
            make_secrets(etc)
        creds = credentials_from_unit(etc, self.tmp / "credentials")
        # the officer the tests sign in as, in place of first boot's (whose PIN was printed)
        (creds / "booking-station-officers").write_text(f"{OFFICER}:{hash_password(PIN)}\n")
        sock = self.tmp / f"notify-{time.monotonic_ns()}.sock"
        self.notify = NotifySocket(sock)
        env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds), NOTIFY_SOCKET=str(sock),
                   WATCHDOG_USEC=str(self.watchdog_usec), PYTHONUNBUFFERED="1")
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen(
            [str(STATION_COMMAND), "run", "--config", str(self.config)], env=env, cwd=self.tmp,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=as_the_unit_starts_it(self.mdwe))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/api/health",
                                        timeout=5) as res:
                return res.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.notify.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


def write_station_config(tmp: Path, broker_port: int, web_port: int, **sections: str) -> Path:
    """A small station: emulated scanner, the flats sequence, a broker on this machine."""
    extra = {"scanner": 'type = "emulated"\nseed = 5\n', "system": "stop_timeout_s = 8\n"}
    for name, body in sections.items():
        extra[name] = extra.get(name, "") + body
    text = (f'[station]\nstation_id = "sys-1"\ndata_dir = "{tmp / "station"}"\n'
            f'[store]\nmin_free_mb = 1\n[mqtt]\nport = {broker_port}\nreconnect_min_s = 0.1\n'
            f'[web]\nport = {web_port}\n[capture]\nsequence = "flats"\n'
            '[records]\nprofile = "local-flats"\n')
    text += "".join(f"[{name}]\n{body}" for name, body in extra.items())
    path = tmp / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture
def station_process(tmp_path: Path) -> Iterator[list[StationProcess]]:
    """Stations started by a test; any still running at the end is killed."""
    started: list[StationProcess] = []
    yield started
    for station in started:
        station.kill()
