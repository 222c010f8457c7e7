"""A real PostgreSQL (Debian's `postgresql`) for one test: a fresh cluster in a temporary
folder, on a free port, trusted on loopback only, stopped and removed afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the package's `postgres` user."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a DSN to a fresh database; skips (fails under CI) without PostgreSQL."""
    bindir = _bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("postgresql is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("postgresql is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="bst-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", free_port()
    run = lambda argv: subprocess.run(_as_postgres(argv), check=True,  # noqa: E731
                                      capture_output=True, timeout=120)
    try:
        run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"])
        run([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l",
             str(folder / "log"), "-o",
             f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=on "
             "-c max_connections=200", "start"])
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                         "-w", "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
