"""Fixtures shared by the whole suite: real Mosquitto brokers on free ports, the data folder,
and a guard that fails a test when a background task swallowed an exception."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )


async def until(predicate, timeout: float = 60.0, what: str = "the condition") -> None:
    """Wait for ``predicate()`` to hold; generous by default, for a loaded machine."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what} never held in {timeout} s"
        await asyncio.sleep(0.05)


HIGH_FD = 1100


@pytest.fixture
def low_fds_taken():
    """Hold every descriptor below HIGH_FD open, so what the test opens next is numbered above
    select()'s FD_SETSIZE (1024), as in a process with many connections or files open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < HIGH_FD + 100:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH_FD + 100), hard))
    held = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            held.append(fd)
            if fd >= HIGH_FD:
                break
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MosquittoProcess:
    """A real broker started for one test."""

    host: str
    port: int
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    binary: str = ""

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"mosquitto exited: {err}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


def _need_mosquitto() -> str:
    binary = _mosquitto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    return binary


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator:
    """Start real brokers with extra config lines; all are stopped after the test."""
    started: list[MosquittoProcess] = []

    def make(extra: str = "", port: int | None = None) -> MosquittoProcess:
        binary = _need_mosquitto()
        port = port or free_port()
        conf = tmp_path / f"mosquitto-{port}.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_packet_size 1048576\n" + extra
        )
        broker = MosquittoProcess("127.0.0.1", port, conf, binary=binary)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory) -> MosquittoProcess:
    """One plain real broker on a free port."""
    return mosquitto_factory()


@pytest.fixture
def data_dir() -> Path:
    """The real fingerprint data beside the repo, or skip with the reason."""
    path = Path(os.environ.get("BST_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data not present at {path} (set BST_DATA_DIR)")
    return path


@pytest.fixture
async def loop_errors() -> Iterator[list[dict]]:
    """Fail the test when a task or callback raised into the loop's exception handler."""
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    yield errors
    loop.set_exception_handler(previous)
    assert not errors, f"background errors: {[e.get('message') for e in errors]}"
